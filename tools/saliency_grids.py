"""PNG grids, one row per saliency method (camera | map | overlay), for three scenarios.

Usage: python tools/saliency_grids.py [--out docs/saliency] [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402

from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.resources import DEFAULT_MODEL  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.saliency import saliency_grid  # noqa: E402
from carla_agent.sim.scenario import load_scenario  # noqa: E402
from carla_agent.network.steering_model import SteeringModel  # noqa: E402

SHOTS = (("gentle_curves", 10.0), ("s_curve_fog", 9.0), ("night_rain", 8.0))
METHODS = ("visual_backprop", "gradcam", "gradient", "gradient_signed", "occlusion", "smoothgrad",
           "integrated_gradients", "hypercolumns")


def frame_at(name: str, time_s: float):
    sc = load_scenario(name)
    with EmbeddedSimulator() as sim:
        agent = ExpertAgent(sc.target_speed_mps)
        obs = sim.reset(sc, seed=0)
        while obs.sim_time_s < time_s:
            obs = sim.step(agent.run_step(obs).control)
    return obs.image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/saliency")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = SteeringModel.load(args.model)
    for name, t in SHOTS:
        grid = saliency_grid([frame_at(name, t)], model, list(METHODS), target="auto")
        path = out / f"{name}.png"
        cv2.imwrite(str(path), grid[:, :, ::-1])
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
