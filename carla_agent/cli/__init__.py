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

from carla_agent.resources import DEFAULT_MODEL
from carla_agent.errors import CarlaAgentError

log = logging.getLogger("carla_agent")



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


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"--tf-threads expects a whole number >= 0 (0 = all cores), got {text!r}")
    return n


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backend")
    g.add_argument("--backend", choices=("embedded", "carla"), default=None,
                   help="simulator (default: the scenario's, 'embedded' for the shipped ones)")
    g.add_argument("--host", default="127.0.0.1", help="CARLA server host (default 127.0.0.1)")
    g.add_argument("--port", "-p", type=int, default=2000, help="CARLA RPC port (default 2000)")
    g.add_argument("--tm-port", type=int, default=8000, help="Traffic Manager port (default 8000)")
    g.add_argument("--timeout", type=float, default=10.0, help="CARLA client timeout in seconds (default 10)")


def _add_saliency_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("saliency")
    g.add_argument("--method", default="visual_backprop", help="saliency method (see 'methods')")
    g.add_argument("--target", default="auto", choices=("auto", "left", "right", "straight"),
                   help="what the map explains (Grad-CAM and gradients)")
    g.add_argument("--layer", default=None, help="conv layer for per-layer methods (default: chosen per method)")


def _backend(args, scenario) -> tuple:
    name = args.backend or scenario.backend
    options = {}
    if name == "carla":
        options = dict(host=args.host, port=args.port, tm_port=args.tm_port, timeout_s=args.timeout)
    return name, options


def _load_scenario(args):
    from dataclasses import replace

    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario(args.scenario)
    if getattr(args, "res", None):
        w, h = args.res
        sc = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
    return sc


def _load_model(path: str, tf_threads: int = 0):
    from carla_agent.network.steering_model import SteeringModel, set_tf_threads

    set_tf_threads(tf_threads)  # before the model's first op: TensorFlow fixes it then
    return SteeringModel.load(path)


def _add_tf_threads_arg(p: argparse.ArgumentParser) -> None:
    from carla_agent.network.steering_model import DRIVE_TF_THREADS

    p.add_argument("--tf-threads", type=_threads, default=DRIVE_TF_THREADS, metavar="N",
                   help=f"TensorFlow threads per op while driving (default {DRIVE_TF_THREADS}: the other core is "
                        "left to the recorder and the saliency worker; 0 = all cores)")


# -- commands ---------------------------------------------------------------

def cmd_scenarios(args) -> int:
    from carla_agent.sim.scenario import load_scenario, shipped_scenarios

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
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.drive.runner import Runner
    from carla_agent.saliency import METHODS
    from carla_agent.sim.simulator import make_simulator

    scenario = _load_scenario(args)
    backend, options = _backend(args, scenario)
    METHODS.get(args.method)  # an unknown method fails before anything starts
    use_hud = not args.headless and _hud_available()
    # The simulator first: an unreachable server is reported before a slow model load.
    with make_simulator(backend, **options) as sim:
        model = _load_model(args.model, args.tf_threads)
        agent = NetworkAgent(model, scenario.target_speed_mps)
        recorder = None
        if args.record or use_hud:
            from carla_agent.recording.batch import make_recorder

            # --record never drops frames; the HUD's R key never stalls the window.
            recorder = make_recorder(args.out, live_video=True, when_full="block" if args.record else "drop",
                                     model=model)
            recorder.autostart = bool(args.record)
        progress = []
        if not args.quiet and not use_hud:
            from carla_agent.drive.progress import ProgressHook

            progress.append(ProgressHook(args.duration or scenario.duration_s))
        if use_hud:
            from carla_agent.hud import drive_episodes, make_hud

            hud = make_hud(model, scenario, method=args.method, target=args.target, layer=args.layer,
                           res=args.hud_res,
                           on_record_toggle=lambda on: recorder.start() if on else recorder.stop())
            runners = []

            def make_runner():
                runners.append(Runner(sim, agent, scenario, seed=args.seed, duration_s=args.duration,
                                      hooks=[hud, recorder]))
                return runners[-1]

            with hud:
                metrics = drive_episodes(make_runner, hud)
            interrupted = runners[-1].interrupted
        else:
            if args.record:
                from carla_agent.saliency import make_explainer

                agent.explainer = make_explainer(model, args.method, output=model.steer_index,
                                                 target=args.target, layer=args.layer)
            hooks = progress + ([recorder] if recorder is not None else [])
            runner = Runner(sim, agent, scenario, seed=args.seed, duration_s=args.duration, hooks=hooks)
            metrics = runner.run()
            interrupted = runner.interrupted
    if args.json:
        _out(json.dumps(metrics.to_dict()))
    else:
        _out(metrics.table())
    if recorder is not None and recorder.runs:
        from carla_agent.recording.batch import finish_run

        for run in recorder.runs:
            # The live video has what was computed while driving; the report gets a
            # full-quality video rendered from the log with the chosen method.
            video, page = finish_run(run, methods=[args.method], model=model, progress=not args.quiet)
            _out(f"recorded {run}" + (f" (report {page})" if page else ""))
    return 130 if interrupted else 0


def _hud_available() -> bool:
    from carla_agent.hud import hud_available

    return hud_available()


def cmd_methods(args) -> int:
    from carla_agent.saliency import METHODS

    width = max(len(n) for n in METHODS.names())
    for name, spec in METHODS.items():
        _out(f"{name:<{width}}  {spec.description}")
    return 0


def cmd_explain(args) -> int:
    from carla_agent.saliency.explain import explain_images

    output = int(args.output) if args.output is not None and args.output.lstrip("-").isdigit() else args.output
    model = _load_model(args.model)
    written = explain_images(args.images, model, method=args.method, target=args.target,
                             output=model.steer_index if output is None else output, out_dir=args.out,
                             layer=args.layer)
    for path in written:
        _out(str(path))
    return 0


def cmd_record(args) -> int:
    from carla_agent.recording.batch import record_batch
    from carla_agent.network.steering_model import set_tf_threads

    set_tf_threads(args.tf_threads)

    backend_options = {}
    if args.backend == "carla":
        backend_options = dict(host=args.host, port=args.port, tm_port=args.tm_port, timeout_s=args.timeout)
    result = record_batch(args.scenarios, args.methods, duration_s=args.duration, out_dir=args.out,
                          model_path=args.model, seed=args.seed, backend=args.backend,
                          backend_options=backend_options, gif=args.gif)
    for run in result.runs:
        _out(f"{run.run_dir}")
    _out(f"index: {result.index}")
    return 0


def cmd_replay(args) -> int:
    from carla_agent.recording.replay import replay

    result = replay(args.run, methods=[m for m in args.methods.split(",") if m], model=args.model,
                    target=args.target, layer=args.layer, ab_model=args.ab_model, out=args.out, fmt=args.format,
                    step=args.step, verify=args.verify, redrive_model=args.redrive)
    for name in ("video", "ab_video", "report", "redrive_run"):
        value = getattr(result, name, None)
        if value:
            _out(f"{name}: {value}")
    if args.verify and getattr(result, "resim", None) is not None:
        _out(f"re-simulation: {result.resim}")
    return 0


def cmd_collect(args) -> int:
    from carla_agent.network.collect import collect
    from carla_agent.sim.scenario import shipped_scenarios

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
    from carla_agent.network.train import train

    metrics = train(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    patience=args.patience)
    _out(json.dumps(metrics, indent=2, default=str))
    return 0


def cmd_evaluate(args) -> int:
    from carla_agent.faithfulness.evaluate import DEFAULT_METHODS, evaluate

    methods = [m for m in args.methods.split(",") if m] if args.methods else list(DEFAULT_METHODS)
    table = evaluate(args.model, scenarios=[s for s in args.scenarios.split(",") if s], methods=methods,
                     frames=args.frames, out_dir=args.out, seed=args.seed, closed_loop_s=args.closed_loop_s)
    _out(table.markdown())
    _out(f"plots and page: {args.out}")
    return 0


def cmd_serve(args) -> int:
    from carla_agent.server.server import serve

    serve(args.scenario, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from carla_agent.sim.scenario import DEFAULT_SCENARIO

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
    _add_saliency_args(p)
    p.add_argument("--hud-res", type=_res, default=(1280, 720), metavar="WxH", help="HUD window size (default 1280x720)")
    p.add_argument("--record", action="store_true", help="record a drive log and attention video under --out")
    p.add_argument("--out", default="runs", help="folder for recorded runs (default runs/)")
    _add_tf_threads_arg(p)
    _add_backend_args(p)
    p.set_defaults(func=cmd_drive)

    p = sub.add_parser("methods", help="list the saliency methods")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("explain", help="saliency map, overlay and prediction for image files")
    p.add_argument("images", nargs="+", help="PNG/JPG camera frames")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--output", default=None, help="output to explain, by name or index (default: steering)")
    p.add_argument("--out", default="out", help="folder for the results (default out/)")
    _add_saliency_args(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("record", help="drive scenarios headless and record logs, attention videos and reports")
    p.add_argument("--scenarios", required=True, help="comma-separated scenario names or files")
    p.add_argument("--methods", default="visual_backprop", help="comma-separated saliency methods for the videos")
    p.add_argument("--duration", type=float, default=None, help="time limit per drive in seconds")
    p.add_argument("--out", default="runs", help="parent folder of the runs (default runs/)")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gif", action="store_true", help="also write a short GIF per run")
    _add_tf_threads_arg(p)
    _add_backend_args(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", help="re-render attention videos from a recorded run, A/B, re-simulate")
    p.add_argument("run", help="run folder written by drive --record or record")
    p.add_argument("--methods", default="visual_backprop", help="comma-separated methods, e.g. visual_backprop,occlusion")
    p.add_argument("--model", default=None, help="model to explain with (default: the run's own)")
    p.add_argument("--target", default="auto", choices=("auto", "left", "right", "straight"))
    p.add_argument("--layer", default=None)
    p.add_argument("--ab-model", default=None, help="second model: A/B video on the same frames")
    p.add_argument("--redrive", default=None, help="drive the run's scenario again closed-loop with this model")
    p.add_argument("--verify", action="store_true", help="re-simulate an embedded run and check bit-identical frames")
    p.add_argument("--out", default=None, help="video file (default RUN/replay_<methods>.mp4)")
    p.add_argument("--format", default="mp4", choices=("mp4", "gif"))
    p.add_argument("--step", type=int, default=1, help="render every N-th frame")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("evaluate", help="how faithful each saliency method is: table, plots, HTML page")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("--scenarios", default="gentle_curves", help="comma-separated scenarios to take frames from")
    p.add_argument("--methods", default="", help="comma-separated methods (default: the main ones)")
    p.add_argument("--frames", type=int, default=200, help="frames per scenario")
    p.add_argument("--closed-loop-s", type=float, default=None,
                   help="also run the closed-loop causal test, each drive this many simulated seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/evaluate")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("serve", help="serve the embedded world over CARLA 0.9.16's protocol")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    p.add_argument("--port", "-p", type=int, default=2000)
    p.set_defaults(func=cmd_serve)

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
