"""Save a sample camera frame (and its semantic labels) from each embedded scenario.

Usage: python tools/render_samples.py [--out docs/frames] [--time 6]

The expert drives each scenario for ``--time`` simulated seconds, then the
frame is written as ``<scenario>.png``, plus a contact sheet ``all.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from carla_agent.drive.agent import ExpertAgent  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.sim.scenario import load_scenario, shipped_scenarios  # noqa: E402

PALETTE = np.array([[0, 0, 0], [128, 64, 128], [255, 255, 255], [244, 35, 232], [107, 142, 35],
                    [70, 130, 180], [0, 0, 142], [220, 220, 0]], np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/frames")
    ap.add_argument("--time", type=float, default=6.0)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tiles = []
    for name in shipped_scenarios().names():
        sc = load_scenario(name)
        if sc.backend != "embedded":
            continue
        with EmbeddedSimulator() as sim:
            agent = ExpertAgent(sc.target_speed_mps)
            obs = sim.reset(sc, seed=0)
            while obs.sim_time_s < args.time and not obs.done:
                obs = sim.step(agent.run_step(obs).control)
        cv2.imwrite(str(out / f"{name}.png"), obs.image[:, :, ::-1])
        sem = PALETTE[obs.truth.semantic]
        tile = np.concatenate([obs.image, sem], axis=1)
        cv2.putText(tile, name, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(tile)
    sheet = np.concatenate(tiles, axis=0)
    cv2.imwrite(str(out / "all.png"), sheet[:, :, ::-1])
    print(f"wrote {len(tiles)} frames to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
