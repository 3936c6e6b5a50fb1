"""Pictures of the network at a junction turn (or a lane change), for docs/: attention-video frames and
HUD screenshots.

    python tools/junction_turn_frames.py [--scenario town_grid_small] [--model PATH]
                                         [--methods visual_backprop,gradcam] [--duration 60]
                                         [--out docs/frames] [--work /tmp/junction_turn]
                                         [--command turn|lane_change] [--intervention-m 1]

With ``--command lane_change`` (and ``--intervention-m 30``, so that the runner leaves the car a
lane off) the span is the first CHANGELANELEFT / CHANGELANERIGHT command, and the pictures are
``OUT/lane_change_{video,hud}_{0,1,2}.png``.

1. ``record`` drives the scenario with the model and writes its drive log and attention video.
2. The drive log's ``command`` column gives the first LEFT or RIGHT junction command; three
   frames of the video, spread over that command's span, are written as
   ``OUT/junction_turn_video_{0,1,2}.png``.
3. ``drive --headless --screenshot-every`` draws the HUD of the same (deterministic) drive;
   the screenshots nearest those frames are copied to ``OUT/junction_turn_hud_{0,1,2}.png``.

The drive is deterministic (seed 0), so the frames of steps 2 and 3 are the same moments.
Prints what it wrote, the turn's direction and frame span. Open the PNGs: at the turn, the map
should sit on the lane being turned into.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from carla_agent.recording.drive_log import DriveLog  # noqa: E402

TURNS = {1: "LEFT", 2: "RIGHT"}  # RoadOption values
LANE_CHANGES = {5: "CHANGELANELEFT", 6: "CHANGELANERIGHT"}


def _run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "carla_agent", *args], cwd=ROOT, check=True)


def turn_span(run: Path, wanted: dict = TURNS) -> tuple[int, int, int]:
    """(command, first frame, last frame) of the run's first command in ``wanted`` (LEFT/RIGHT)."""
    log = DriveLog.open(run)
    commands = np.array([int(log.row(i).get("command") or 4) for i in range(len(log))])
    turns = np.flatnonzero(np.isin(commands, tuple(wanted)))
    if not len(turns):
        raise SystemExit(f"{run}: no {' or '.join(wanted.values())} command in the drive log; drive longer "
                         f"(--duration)")
    first = last = int(turns[0])
    while last + 1 < len(commands) and commands[last + 1] == commands[first]:
        last += 1
    return int(commands[first]), first, last


def video_frames(video: Path, picks: list[int]) -> dict[int, np.ndarray]:
    reader = imageio_ffmpeg.read_frames(str(video))
    meta = next(reader)
    w, h = meta["size"]
    out = {}
    for i, buf in enumerate(reader):
        if i in picks:
            out[i] = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        if i >= max(picks):
            break
    reader.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="town_grid_small")
    p.add_argument("--model", default=str(ROOT / "carla_agent" / "models" / "pilotnet.keras"))
    p.add_argument("--methods", default="visual_backprop,gradcam")
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--out", default=str(ROOT / "docs" / "frames"))
    p.add_argument("--work", default="/tmp/junction_turn")
    p.add_argument("--command", choices=("turn", "lane_change"), default="turn")
    p.add_argument("--intervention-m", default="1")
    a = p.parse_args(argv)
    wanted, prefix = (TURNS, "junction_turn") if a.command == "turn" else (LANE_CHANGES, "lane_change")
    work, out = Path(a.work), Path(a.out)
    shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    _run(["record", "--scenarios", a.scenario, "--methods", a.methods, "--model", a.model,
          "--duration", str(a.duration), "--seed", "0", "--out", str(work / "rec"), "--quiet",
          "--intervention-m", a.intervention_m])
    run = next(d for d in sorted((work / "rec").iterdir()) if (d / "meta.json").is_file())
    command, first, last = turn_span(run, wanted)
    # A lane change is decided in its first half (steer towards the lane, then straighten up).
    picks = [first + (last - first) * k // 4 for k in ((1, 2, 3) if a.command == "turn" else (0, 1, 2))]
    meta = json.loads((run / "meta.json").read_text())
    videos = sorted(run.glob("*.mp4"))
    video = next((v for v in videos if "live" not in v.name), videos[0])
    frames = video_frames(video, picks)
    written = []
    for k, i in enumerate(picks):
        path = out / f"{prefix}_video_{k}.png"
        cv2.imwrite(str(path), cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
        written.append(path)
    shots = work / "hud"
    _run(["drive", "--scenario", a.scenario, "--model", a.model, "--headless", "--seed", "0",
          "--method", a.methods.split(",")[0], "--duration", str((last + 20) * meta.get("dt_s", 0.05)),
          "--screenshot-every", "5", str(shots), "--intervention-m", a.intervention_m])
    taken = sorted(shots.glob("frame_*.png"))
    numbers = np.array([int(s.stem.split("_")[1]) for s in taken])
    log = DriveLog.open(run)
    for k, i in enumerate(picks):
        sim_frame = int(log.row(i).get("frame") or i)
        src = taken[int(np.argmin(np.abs(numbers - sim_frame)))]
        path = out / f"{prefix}_hud_{k}.png"
        shutil.copy(src, path)
        written.append(path)
    print(f"{wanted[command]}, frames {first}..{last}, picked {picks}; video {video.name}")
    for path in written:
        print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
