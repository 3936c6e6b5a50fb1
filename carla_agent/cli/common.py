"""What several commands share: output, argument types, and the option groups whose
choices come from the registries (backends, saliency methods, targets)."""

from __future__ import annotations

import argparse
import sys
from typing import Tuple

from carla_agent.resources import DEFAULT_MODEL


def out(text: str = "") -> None:
    """Program output (results), as opposed to logging."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def resolution(text: str, min_wh: Tuple[int, int] = (32, 32)) -> Tuple[int, int]:
    """``WIDTHxHEIGHT`` -> ``(width, height)`` in pixels, each at least ``min_wh`` (argparse names the option)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects WIDTHxHEIGHT like 800x600, got {text!r}") from None
    if w < min_wh[0] or h < min_wh[1]:
        raise argparse.ArgumentTypeError(f"{text}: width and height must be at least {min_wh[0]}x{min_wh[1]}")
    return w, h


def window_resolution(text: str) -> Tuple[int, int]:
    """``--res``: the HUD window's ``WIDTHxHEIGHT``, at least 320x240."""
    return resolution(text, (320, 240))


def speed_factor(text: str) -> float:
    """``--speed``: a number > 0 or ``max`` (``math.inf``)."""
    from carla_agent.drive.pacing import PacingError, parse_speed

    try:
        return parse_speed(text)
    except PacingError:
        raise argparse.ArgumentTypeError(f"expects a number > 0 (1 = real time, 0.5 = half speed) or 'max', "
                                         f"got {text!r}") from None


def tf_threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"--tf-threads expects a whole number >= 0 (0 = all cores), got {text!r}")
    return n


def refuse_existing_folder(path: str, force: bool, what: str = "folder") -> None:
    """Stop before an existing, non-empty ``--out`` folder (a run or a dataset) is overwritten:
    one line naming the folder and ``--force``. A file there is refused even with ``--force``."""
    from pathlib import Path

    from carla_agent.errors import CarlaAgentError

    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CarlaAgentError(f"--out {p}: is a file, not a {what}; choose a folder")
    if p.is_dir() and any(p.iterdir()) and not force:
        raise CarlaAgentError(f"--out {p}: exists and is not empty (a run or a dataset?); choose a new --out, "
                              f"or pass --force to overwrite it")


def check_out(path: str, kind: str = "folder", option: str = "--out") -> None:
    """Stop before writing under ``path`` when it cannot be what ``kind`` says: one line naming it.

    Args:
        path: the option's value.
        kind: ``folder`` (created when missing; a file there is refused) or ``file`` (written or
            replaced; a folder there is refused).
        option: the option's name, for the message.

    Raises:
        CarlaAgentError: ``path`` (or a folder it would be created in) is the wrong kind of thing.
    """
    from pathlib import Path

    from carla_agent.errors import CarlaAgentError

    p = Path(path)
    if kind == "folder" and p.exists() and not p.is_dir():
        raise CarlaAgentError(f"{option} {p}: is a file, not a folder; choose a folder (it is created when missing)")
    if kind == "file" and p.is_dir():
        raise CarlaAgentError(f"{option} {p}: is a folder; name the file to write, e.g. {p / 'video.mp4'}")
    for parent in (p.parents if kind == "file" else [p, *p.parents]):
        if parent.exists():
            if not parent.is_dir():
                raise CarlaAgentError(f"{option} {p}: {parent} is a file, not a folder; choose another {option}")
            break


def camera_resolution(text: str) -> Tuple[int, int]:
    """``--camera-res``: ``WIDTHxHEIGHT`` within the scenarios' camera limits (each side 32-4096 px,
    at most 1920 x 1080 pixels in all)."""
    from carla_agent.sim.scenario import MAX_CAMERA_PIXELS

    w, h = resolution(text, (32, 32))
    if w > 4096 or h > 4096 or w * h > MAX_CAMERA_PIXELS:
        raise argparse.ArgumentTypeError(f"{text}: {w} x {h} is {w * h} pixels; a camera is at most "
                                         f"{MAX_CAMERA_PIXELS} pixels (1920x1080) and 4096 on a side")
    return w, h


def scenario_names(text: str, option: str = "--scenarios") -> list:
    """The comma-separated names of ``text``; one line when there is none (``--scenarios ,``)."""
    from carla_agent.errors import ScenarioError

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ScenarioError(f"{option} {text!r}: no scenario named; give one or more, comma-separated, e.g. "
                            f"{option} gentle_curves,highway (python -m carla_agent scenarios lists them)")
    return names


def bounded_float(flag: str, what: str, low: float, high: float, low_included: bool = False):
    """An argparse type: a finite float in ``(low, high]`` (``[low, high]`` with ``low_included``),
    else the error ``FLAG expects WHAT in (LOW, HIGH], got 'TEXT'``."""
    bounds = f"{'[' if low_included else '('}{low:g}, {high:g}]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        above = value >= low if low_included else value > low
        if not (above and value <= high):  # also false for NaN
            raise argparse.ArgumentTypeError(f"{flag} expects {what} in {bounds}, got {text!r}")
        return value

    return parse


#: ``--duration``: simulated seconds in (0, 86400].
duration_s = bounded_float("--duration", "simulated seconds", 0.0, 86400.0)


#: ``--intervention-m``: metres in (0, 100].
intervention_m = bounded_float("--intervention-m", "metres", 0.0, 100.0)


def add_intervention(p: argparse.ArgumentParser) -> None:
    """``--intervention-m``: how far off its lane the car is put back (and an intervention counted)."""
    p.add_argument("--intervention-m", type=intervention_m, default=1.0, metavar="M",
                   help="put the car back on its lane when it is M metres off the lane centre, counting an "
                        "intervention (default 1: NVIDIA's protocol; 30: the leaderboard's route deviation, "
                        "no help before it: the route asks for a lane change back instead)")


def comma_list(text: str) -> list:
    return [item for item in text.split(",") if item]


def add_verbose(p: argparse.ArgumentParser) -> None:
    """``-v`` after the command too (``drive -v``); :func:`carla_agent.cli.parse_args` adds
    it to the count given before the command."""
    p.add_argument("-v", "--verbose", action="count", dest="verbose_after", default=0,
                   help="more logging (-vv for debug); TensorFlow's own log lines too")


def add_quiet(p: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar (on a terminal a bar animates; into a log it writes a few plain lines)."""
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_model(p: argparse.ArgumentParser, default=str(DEFAULT_MODEL), text: str = "") -> None:
    p.add_argument("--model", default=default,
                   help=text or "Keras model (.keras or .h5); default: the shipped PilotNet")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    from carla_agent.sim.simulator import BACKENDS

    g = p.add_argument_group("backend")
    g.add_argument("--backend", choices=BACKENDS.names(), default=None,
                   help="simulator (default: the scenario's, 'embedded' for the shipped ones)")
    g.add_argument("--host", default="127.0.0.1", help="CARLA server host (default 127.0.0.1)")
    g.add_argument("--port", "-p", type=int, default=2000, help="CARLA RPC port (default 2000)")
    g.add_argument("--tm-port", type=int, default=8000, help="Traffic Manager port (default 8000)")
    g.add_argument("--timeout", type=seconds, default=10.0,
                   help="CARLA client time-out in seconds, as in CARLA's examples (default 10); also the "
                        "watchdog: a tick that has not returned 1 s after it ends the drive with one line")
    g.add_argument("--load-timeout", type=seconds, default=60.0,
                   help="seconds to wait for a map to load (load_world, a replay on another map; default 60)")
    g.add_argument("--sensor-timeout", type=seconds, default=None,
                   help="seconds to wait for a camera frame after a tick (default: --timeout)")
    g.add_argument("--allow-version-mismatch", action="store_true",
                   help="go on when the carla client and the server differ in version (a warning instead of "
                        "an error)")


def seconds(text: str) -> float:
    """A time-out: a finite number of seconds in (0, 3600]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 < value <= 3600.0):  # also false for NaN
        raise argparse.ArgumentTypeError(f"expects seconds in (0, 3600], got {text!r}")
    return value


def backend_options(args, record: bool = False) -> dict:
    """The CARLA connection options for ``--backend carla``; nothing for the embedded one.
    ``record``: switch CARLA's own recorder on for each episode (the file is named in the run's meta.json)."""
    if getattr(args, "backend", None) != "carla":
        return {}
    options = dict(host=args.host, port=args.port, tm_port=args.tm_port, timeout_s=args.timeout,
                   load_timeout_s=args.load_timeout, sensor_timeout_s=args.sensor_timeout,
                   allow_version_mismatch=args.allow_version_mismatch)
    return dict(options, record=True) if record else options


def add_target(p, help_text: str = "what the map explains (Grad-CAM and gradients)") -> None:
    from carla_agent.saliency.targets import TARGETS

    p.add_argument("--target", default="auto", choices=TARGETS.names(), help=help_text)


def add_saliency_args(p: argparse.ArgumentParser) -> None:
    from carla_agent.saliency.methods import METHODS

    g = p.add_argument_group("saliency")
    g.add_argument("--method", default="visual_backprop", metavar="NAME",
                   help=f"saliency method: {', '.join(METHODS.names())}")
    add_target(g)
    g.add_argument("--layer", default=None, help="conv layer for per-layer methods (default: chosen per method)")


def add_tf_threads(p: argparse.ArgumentParser) -> None:
    from carla_agent.network.tf_threads import DRIVE_TF_THREADS

    p.add_argument("--tf-threads", type=tf_threads, default=DRIVE_TF_THREADS, metavar="N",
                   help=f"TensorFlow threads per op while driving (default {DRIVE_TF_THREADS}: the other core is "
                        "left to the recorder and the saliency worker; 0 = all cores)")


def load_model(path: str, threads: int = 0):
    from carla_agent.network.steering_model import SteeringModel
    from carla_agent.network.tf_threads import set_tf_threads

    set_tf_threads(threads)  # before the model's first op: TensorFlow fixes it then
    return SteeringModel.load(path)
