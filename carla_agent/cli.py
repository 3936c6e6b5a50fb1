"""Command line: ``python -m carla_agent <command>``.

Errors caused by input (a bad scenario, a missing model, no server) print one
line to stderr and exit with code 2; Ctrl-C exits with 130 after cleanup.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

from carla_agent.errors import CarlaAgentError

log = logging.getLogger("carla_agent")

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "pilotnet.keras"


def _out(text: str = "") -> None:
    """Program output (results), as opposed to logging."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _res(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--res expects WIDTHxHEIGHT like 800x600, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"--res {text}: width and height must be at least 32")
    return w, h


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--backend", choices=("embedded", "carla"), default=None,
                   help="simulator (default: the scenario's, 'embedded' for the shipped ones)")
    g.add_argument("--host", default="127.0.0.1", help="CARLA server host (default 127.0.0.1)")
    g.add_argument("--port", "-p", type=int, default=2000, help="CARLA RPC port (default 2000)")
    g.add_argument("--tm-port", type=int, default=8000, help="Traffic Manager port (default 8000)")
    g.add_argument("--timeout", type=float, default=10.0, help="CARLA client timeout in seconds (default 10)")


def _backend(args, scenario) -> tuple:
    name = args.backend or scenario.backend
    options = {}
    if name == "carla":
        options = dict(host=args.host, port=args.port, tm_port=args.tm_port, timeout_s=args.timeout)
    return name, options


def _load_scenario(args):
    from dataclasses import replace

    from carla_agent.scenario import load_scenario

    sc = load_scenario(args.scenario)
    if getattr(args, "res", None):
        w, h = args.res
        sc = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
    return sc


def _load_model(path: str):
    from carla_agent.steering_model import SteeringModel

    return SteeringModel.load(path)


# -- commands ---------------------------------------------------------------

def cmd_scenarios(args) -> int:
    from carla_agent.scenario import load_scenario, shipped_scenarios

    reg = shipped_scenarios()
    rows = []
    for name in reg:
        sc = load_scenario(name)
        rows.append((name, sc.backend, sc.weather.preset, sc.description))
    width = max(len(r[0]) for r in rows)
    for name, backend, weather, desc in rows:
        _out(f"{name:<{width}}  {backend:<8}  {weather:<10}  {desc}")
    return 0


def cmd_drive(args) -> int:
    from carla_agent.agent import NetworkAgent
    from carla_agent.runner import Runner
    from carla_agent.simulator import make_simulator

    scenario = _load_scenario(args)
    backend, options = _backend(args, scenario)
    hooks = []
    if not args.quiet:
        from carla_agent.progress import ProgressHook

        hooks.append(ProgressHook(args.duration or scenario.duration_s))
    # The simulator first: an unreachable server is reported before a slow model load.
    with make_simulator(backend, **options) as sim:
        model = _load_model(args.model)
        agent = NetworkAgent(model, scenario.target_speed_mps)
        runner = Runner(sim, agent, scenario, seed=args.seed, duration_s=args.duration, hooks=hooks)
        metrics = runner.run()
    if args.json:
        _out(json.dumps(metrics.to_dict()))
    else:
        _out(metrics.table())
    return 130 if runner.interrupted else 0


def cmd_collect(args) -> int:
    from carla_agent.collect import collect
    from carla_agent.scenario import shipped_scenarios

    names = args.scenarios.split(",") if args.scenarios else [n for n in shipped_scenarios()
                                                                if not n.startswith("carla_")]
    weathers = tuple(w for w in args.weathers.split(",") if w) if args.weathers else ()
    backend_options = {}
    if args.backend == "carla":
        backend_options = dict(host=args.host, port=args.port, tm_port=args.tm_port, timeout_s=args.timeout)
    stats = collect(names, args.out, episodes=args.episodes, seed=args.seed, duration_s=args.duration,
                    backend=args.backend or "embedded", backend_options=backend_options, weathers=weathers,
                    driver_model=args.driver_model)
    _out(json.dumps(stats))
    return 0


def cmd_train(args) -> int:
    from carla_agent.train import train

    metrics = train(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    patience=args.patience)
    _out(json.dumps(metrics, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from carla_agent.scenario import DEFAULT_SCENARIO

    parser = argparse.ArgumentParser(prog="python -m carla_agent",
                                     description="Drive a steering network in CARLA or the embedded simulator, "
                                                 "and see where it looks.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("drive", help="drive a scenario closed-loop with the steering network")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO, help=f"scenario name or YAML file (default {DEFAULT_SCENARIO})")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="Keras model (.keras or .h5); default: the shipped PilotNet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None, help="time limit in simulated seconds (default: the scenario's)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--res", type=_res, default=None, metavar="WxH", help="camera resolution, e.g. 800x600")
    p.add_argument("--sync", action="store_true", default=True,
                   help="synchronous mode (always on: one tick per step, as in CARLA's synchronous mode)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_backend_args(p)
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=cmd_scenarios)

    p = sub.add_parser("collect", help="drive the noisy expert and write a training dataset")
    p.add_argument("--scenarios", default="", help="comma-separated names (default: every embedded scenario)")
    p.add_argument("--out", required=True, help="new dataset directory")
    p.add_argument("--episodes", type=int, default=2, help="episodes per scenario")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None, help="per-episode limit in seconds")
    p.add_argument("--weathers", default="", help="comma-separated weather presets to cycle through")
    p.add_argument("--driver-model", default=None,
                   help="DAgger: let this model drive (the expert still labels every frame)")
    _add_backend_args(p)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("train", help="train PilotNet on a dataset")
    p.add_argument("--data", required=True, help="dataset directory written by collect")
    p.add_argument("--out", required=True, help="model file to write (.keras)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CarlaAgentError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
