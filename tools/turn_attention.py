"""Does the saliency map sit on the lane being turned into? Measured at junction turns.

    python tools/turn_attention.py [--model PATH] [--towns grid_small,ring_multilane] [--routes 3]
                                   [--methods visual_backprop,gradcam,...] [--every 4] [--ahead-m 30]
                                   [--inside] [--driver model|expert] [--fov 90] [--explain-model PATH]
                                   [--pictures PNG]

The model drives the bench's seeded random routes (``bench/bench_towns.py``'s: seeds 0.., camera
240x135; by the leaderboard's rules, the runner's help only at 30 m off). On every ``--every``-th
frame with a LEFT or RIGHT command, each method explains the driving branch, and the map (|map|
for signed methods, projected back onto the camera frame) is compared with the pixels of the lane
being turned into: the route's lane from the junction's exit to ``--ahead-m`` beyond it
(:mod:`carla_agent.sim.embedded.lane_mask`), within the rows the model sees. Per frame:

* ``mass`` = the map's share inside that lane, ``area`` = the lane's share of the pixels;
* ``ratio`` = mass / area: 1 is a map spread evenly, above 1 a map drawn to the lane;
* the same for the LANEFOLLOW branch's map of the same frame (what the map would be without the
  turn command: for VisualBackProp, activations and hypercolumns, which read the shared conv
  layers only, it is the same map).

Frames where the lane covers under 0.5 % of the pixels (far, or not in view) are skipped;
``--inside`` keeps only the frames with the car inside the junction (the turn itself).
Prints one row per method and town: frames, mean mass, mean area, mean mass / mean area, and
the share of frames with a ratio above 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carla_agent.cli.common import bounded_float  # noqa: E402
from carla_agent.drive.agent import ExpertAgent, NetworkAgent  # noqa: E402
from carla_agent.drive.runner import RunnerHook  # noqa: E402
from carla_agent.drive.session import drive_scenario  # noqa: E402
from carla_agent.sim.embedded.roadnet.random_route import random_route_scenario  # noqa: E402
from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.sim.routing.road_option import RoadOption  # noqa: E402
from carla_agent.saliency import normalize_frame, overlay  # noqa: E402

TURNS = (int(RoadOption.LEFT), int(RoadOption.RIGHT))
FOLLOW = int(RoadOption.LANEFOLLOW)
MIN_AREA = 0.005


class _Measure(RunnerHook):
    def __init__(self, model, explainers: dict, every: int, ahead_m: float, pictures: int = 0) -> None:
        self.model, self.explainers, self.every, self.ahead_m = model, explainers, every, ahead_m
        self.rows: list = []  # (method, mass, mass with the LANEFOLLOW branch, area, inside the junction)
        self.strips: list = []  # up to ``pictures`` rows: camera | each method's map, the lane outlined
        self.pictures = pictures
        self.sim = None
        self._turn_frames = 0

    def on_start(self, context, obs) -> None:
        self.sim = context.sim

    def on_step(self, record) -> None:
        obs, sim = record.obs, self.sim
        if obs.command not in TURNS:
            return
        self._turn_frames += 1
        if self._turn_frames % self.every:
            return
        # The junction this command belongs to: the first turning leg that ends ahead of the car.
        leg = sim.junction_leg_ahead(TURNS)
        if leg is None:
            return
        entry_s, exit_s = leg[0], leg[1]
        lane = sim.route_lane_mask(exit_s, exit_s + self.ahead_m)
        prep = self.model.preprocessing
        seen = prep.project_map(np.ones((prep.height, prep.width), np.float32), lane.shape) > 0
        area = float(lane[seen].mean())
        if area < MIN_AREA:
            return
        x = prep(obs.image)[None]
        inside = sim.s >= entry_s
        strip = ([_outlined(obs.image, lane, f"frame {obs.frame} {RoadOption(obs.command).name}")]
                 if inside and len(self.strips) < self.pictures else None)
        for name, explain in self.explainers.items():
            shares = []
            for command in (obs.command, FOLLOW):  # the driving branch, then LANEFOLLOW's on the same frame
                self.model.set_command(command)
                full = np.abs(prep.project_map(explain(x).maps[0], lane.shape))
                if strip is not None and command == obs.command:
                    strip.append(_outlined(overlay(obs.image, normalize_frame(full), "jet"), lane, name))
                m = full[seen]
                total = float(m.sum())
                shares.append(float(m[lane[seen]].sum()) / total if total > 0 else np.nan)
            self.model.set_command(obs.command)
            if np.all(np.isfinite(shares)):
                self.rows.append((name, shares[0], shares[1], area, inside))
        if strip is not None:
            self.strips.append(np.concatenate(strip, axis=1))


def _outlined(image: np.ndarray, lane: np.ndarray, label: str) -> np.ndarray:
    """A copy of ``image`` with the lane turned into outlined in white and ``label`` in its corner."""
    out = image.copy()
    contours, _ = cv2.findContours(lane.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
    out[:h + 6, :w + 6] //= 3  # a dark plate under the label
    cv2.putText(out, label, (3, h + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(ROOT / "carla_agent" / "models" / "pilotnet.keras"))
    p.add_argument("--towns", default="grid_small,ring_multilane")
    p.add_argument("--routes", type=int, default=3, help="routes per town (seeds 0..)")
    p.add_argument("--methods", default="visual_backprop,gradcam,gradient,smoothgrad,integrated_gradients,occlusion")
    p.add_argument("--every", type=int, default=4, help="every Nth turn frame")
    p.add_argument("--ahead-m", type=float, default=30.0)
    p.add_argument("--inside", action="store_true", help="only the frames inside the junction (not its approach)")
    p.add_argument("--driver", choices=("model", "expert"), default="model",
                   help="who drives: --model, or the (noise-free) expert")
    p.add_argument("--fov", type=bounded_float("--fov", "degrees", 10.0, 170.0, low_included=True), default=90.0, help="the camera's horizontal field of view, degrees")
    p.add_argument("--pictures", metavar="PNG", help="also write, per town, PNG with the town's name added: "
                   "6 rows of camera | each method's map (driving branch), spread over the first 60 measured frames "
                   "inside a junction, the lane turned into outlined")
    p.add_argument("--explain-model", help="explain this model's branches instead of the driving model's "
                   "(e.g. a candidate with a junction trunk of its own, while the shipped model drives)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from carla_agent.network.steering_model import SteeringModel
    from carla_agent.saliency import make_explainer

    model = SteeringModel.load(a.model)
    explained = SteeringModel.load(a.explain_model) if a.explain_model else model
    methods = [m for m in a.methods.split(",") if m]
    explainers = {m: make_explainer(explained, m, output=explained.steer_index) for m in methods}
    print("| method | town | frames | map's share on the lane turned into (mean) | lane's share of the pixels "
          "(mean) | concentration (mass / area) | frames above 1 | the LANEFOLLOW branch's map on the same frames: "
          "concentration |")
    print("|---|---|---|---|---|---|---|---|")
    for town in a.towns.split(","):
        hook = _Measure(explained, explainers, a.every, a.ahead_m, pictures=60 if a.pictures else 0)
        for seed in range(a.routes):
            sc = random_route_scenario(town, seed, camera={"image_size_x": 240, "image_size_y": 135, "fov": a.fov})
            agent = (NetworkAgent(model, sc.target_speed_mps) if a.driver == "model"
                     else ExpertAgent(sc.target_speed_mps))
            with EmbeddedSimulator(render=True) as sim:
                drive_scenario(sc, agent, sim=sim, seed=seed, hooks=[hook], intervention_m=30.0)
        if a.pictures and hook.strips:
            path = Path(a.pictures)
            path = path.with_name(f"{path.stem}_{town}{path.suffix or '.png'}")
            picked = [hook.strips[i] for i in np.unique(np.linspace(0, len(hook.strips) - 1, 6).round().astype(int))]
            cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(picked, axis=0), cv2.COLOR_RGB2BGR))
            print(f"pictures: {path}", file=sys.stderr)
        for name in methods:
            rows = [r[1:4] for r in hook.rows if r[0] == name and (r[4] or not a.inside)]
            if not rows:
                continue
            mass, follow, area = np.array(rows).T
            print(f"| {name} | `{town}` | {len(rows)} | {mass.mean():.3f} | {area.mean():.3f} | "
                  f"{mass.mean() / area.mean():.2f} | {np.mean(mass > area):.0%} | "
                  f"{follow.mean() / area.mean():.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
