"""Still frames of a Leaderboard route's attention video, for docs/frames/.

    python tools/leaderboard_frames.py RUN_DIR OUT_PREFIX [--at 10 60 turn ...]

RUN_DIR is one route's drive log (``carla_agent_runs/<run>/`` beside the evaluator's
--checkpoint, written by carla_agent/leaderboard/entry/pilotnet_agent.py with ``record: true``).
Each ``--at`` is a simulation time in seconds, or ``turn``: the middle of the first stretch whose
route command (``rows.csv`` column ``command``, CARLA's RoadOption) is LEFT (1) or RIGHT (2), i.e.
a junction turn. Writes ``OUT_PREFIX_<t>s.png`` from ``attention.mp4`` (the rendered video; the
live one, ``attention_live.mp4``, where it is missing) and prints each file with the row's
command, speed and lateral offset.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2

TURNS = {"1": "LEFT", "2": "RIGHT"}
NAMES = {"1": "LEFT", "2": "RIGHT", "3": "STRAIGHT", "4": "LANEFOLLOW", "5": "CHANGELANELEFT", "6": "CHANGELANERIGHT"}


def turn_time(rows) -> float:
    """Sim time (s) of the middle of the first LEFT/RIGHT stretch; exits naming the commands seen."""
    stretch = [r for r in rows if r.get("command") in TURNS]
    if not stretch:
        sys.exit(f"no junction turn on this route: commands seen {sorted({r.get('command') for r in rows})}")
    first = [stretch[0]]
    for r in stretch[1:]:
        if int(r["i"]) != int(first[-1]["i"]) + 1:
            break
        first.append(r)
    return float(first[len(first) // 2]["sim_time_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("out_prefix")
    ap.add_argument("--at", nargs="+", default=["10"])
    args = ap.parse_args()
    rows = list(csv.DictReader(open(args.run_dir / "rows.csv")))
    video = next((args.run_dir / n for n in ("attention.mp4", "attention_live.mp4")
                  if (args.run_dir / n).exists()), None)
    if video is None:
        sys.exit(f"{args.run_dir}: no attention.mp4 or attention_live.mp4")
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 20.0
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    dt = float(rows[1]["sim_time_s"]) - float(rows[0]["sim_time_s"]) if len(rows) > 1 else 0.05
    for at in args.at:
        t = turn_time(rows) if at == "turn" else float(at)
        i = min(int(round(t / dt)), len(rows) - 1)
        k = min(int(round(i * n / len(rows))), n - 1)  # the video may skip ticks: proportional
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, img = cap.read()
        if not ok:
            sys.exit(f"{video}: no frame {k} of {n}")
        out = Path(f"{args.out_prefix}_{t:.0f}s.png")
        cv2.imwrite(str(out), img)
        r = rows[i]
        print(f"{out}: t {t:.1f} s (video frame {k}/{n} at {fps:.0f} fps), command "
              f"{NAMES.get(r.get('command'), r.get('command'))}, speed {float(r['speed_mps']) * 3.6:.1f} km/h, "
              f"offset {float(r['lateral_offset_m'] or 0):+.2f} m, x {float(r['x_m']):.1f} y {float(r['y_m']):.1f}")


if __name__ == "__main__":
    main()
