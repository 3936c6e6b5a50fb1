"""Render a town scenario's camera at its junctions: approaching each, and half way through it.

For looking at the town renderer: for every junction the route crosses, a frame
``approach_m`` before it and one in the middle of it (a turn, where the route
turns), at each size, RGB next to the semantic labels in false colours.

    python tools/render_town_frames.py --scenario town_grid_small --sizes 800x600 200x66 --out /tmp/frames
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from carla_agent.sim.embedded.simulator import EmbeddedSimulator  # noqa: E402
from carla_agent.sim.scenario import load_scenario  # noqa: E402

#: False colours of the semantic labels (SemanticClass order), RGB.
LABEL_RGB = np.array([(0, 0, 0), (128, 64, 128), (255, 255, 255), (190, 153, 153), (107, 142, 35), (70, 130, 180),
                      (0, 0, 142), (220, 220, 0), (244, 35, 232), (250, 170, 30)] + [(255, 0, 255)] * 246, np.uint8)


def frames(scenario: str, sizes, out: Path, approach_m: float = 25.0, time_s=None) -> list:
    sc = load_scenario(scenario)
    written = []
    for w, h in sizes:
        sc2 = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
        with EmbeddedSimulator() as sim:
            sim.reset(sc2, seed=0)
            road, net = sim.road, sim.town.network
            for k, (s0, s1, rid, _, option) in enumerate(sim.corridor.legs):
                if net.roads[rid].junction_id < 0:
                    continue
                j = net.roads[rid].junction_id
                for tag, s in (("approach", s0 - approach_m), (option.name.lower(), 0.5 * (s0 + s1))):
                    if s < 0:
                        continue
                    x, y = road.to_world(s, road.lane_center_t(-1))
                    frame = 0 if time_s is None else int(round(time_s / sc.dt_s))
                    rgb, sem = sim._renderer.render(float(x), float(y), road.heading_at(s), s, (), frame)
                    img = np.concatenate([rgb, LABEL_RGB[sem]], axis=1)
                    path = out / f"{scenario}_j{j}_{k:02d}_{tag}_{w}x{h}.png"
                    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                    written.append(path)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="town_grid_small")
    ap.add_argument("--sizes", nargs="+", default=["800x600", "200x66"])
    ap.add_argument("--out", default="frames_town")
    ap.add_argument("--time-s", type=float, default=None, help="the time whose light states are shown")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    for p in frames(args.scenario, sizes, out, time_s=args.time_s):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
