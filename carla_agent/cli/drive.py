"""``drive``: one closed-loop drive with the network (a HUD window when a display is
there), and ``scenarios``: the shipped scenarios."""

from __future__ import annotations

import argparse
import json

from carla_agent.cli.common import (add_backend_args, add_model, add_saliency_args, add_tf_threads, add_verbose,
                                    load_model, out, resolution)


def add_parsers(sub) -> None:
    from carla_agent.sim.scenario import DEFAULT_SCENARIO

    p = sub.add_parser("drive", help="drive a scenario closed-loop with the steering network")
    add_verbose(p)
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"scenario name or YAML file (default {DEFAULT_SCENARIO})")
    add_model(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None,
                   help="time limit in simulated seconds (default: the scenario's)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--res", type=resolution, default=None, metavar="WxH", help="camera resolution, e.g. 800x600")
    p.add_argument("--sync", action="store_true", default=True,
                   help="synchronous mode (always on: one tick per step, as in CARLA's synchronous mode)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_saliency_args(p)
    p.add_argument("--hud-res", type=resolution, default=(1280, 720), metavar="WxH",
                   help="HUD window size (default 1280x720)")
    p.add_argument("--record", action="store_true", help="record a drive log and attention video under --out")
    p.add_argument("--out", default="runs", help="folder for recorded runs (default runs/)")
    add_tf_threads(p)
    add_backend_args(p)
    p.set_defaults(func=run)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    add_verbose(p)
    p.set_defaults(func=list_scenarios)


def list_scenarios(args) -> int:
    from carla_agent.sim.scenario import load_scenario, shipped_scenarios

    rows = []
    for name in shipped_scenarios():
        sc = load_scenario(name)
        rows.append((name, sc.backend, sc.weather.preset, sc.description))
    width = max(len(r[0]) for r in rows)
    for name, backend, weather, desc in rows:
        out(f"{name:<{width}}  {backend:<8}  {weather:<10}  {desc}")
    return 0


def _backend(args, scenario) -> tuple:
    from carla_agent.cli.common import backend_options

    name = args.backend or scenario.backend
    return name, backend_options(argparse.Namespace(**{**vars(args), "backend": name}))


def _load_scenario(args):
    from dataclasses import replace

    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario(args.scenario)
    if getattr(args, "res", None):
        w, h = args.res
        sc = replace(sc, camera=replace(sc.camera, image_size_x=w, image_size_y=h))
    return sc


def run(args) -> int:
    from carla_agent.drive.agent import NetworkAgent
    from carla_agent.drive.session import drive_scenario
    from carla_agent.saliency import METHODS
    from carla_agent.sim.simulator import make_simulator

    scenario = _load_scenario(args)
    backend, options = _backend(args, scenario)
    METHODS.get(args.method)  # an unknown method fails before anything starts
    use_hud = not args.headless and _hud_available()
    # The simulator first: an unreachable server is reported before a slow model load.
    with make_simulator(backend, **options) as sim:
        model = load_model(args.model, args.tf_threads)
        agent = NetworkAgent(model, scenario.target_speed_mps)
        recorder = None
        if args.record or use_hud:
            from carla_agent.recording.batch import make_recorder

            # --record never drops frames; the HUD's R key never stalls the window.
            recorder = make_recorder(args.out, live_video=True, when_full="block" if args.record else "drop",
                                     model=model)
            recorder.autostart = bool(args.record)
        drive = dict(sim=sim, seed=args.seed, duration_s=args.duration)
        if use_hud:
            from carla_agent.hud import make_hud

            hud = make_hud(model, scenario, method=args.method, target=args.target, layer=args.layer,
                           res=args.hud_res,
                           on_record_toggle=lambda on: recorder.start() if on else recorder.stop())
            with hud:
                result = drive_scenario(scenario, agent, hooks=[hud, recorder], restart=hud.consume_restart, **drive)
        else:
            hooks = [] if recorder is None else [recorder]
            if not args.quiet:
                from carla_agent.drive.progress import ProgressHook

                hooks.insert(0, ProgressHook(args.duration or scenario.duration_s))
            if args.record:
                from carla_agent.saliency import make_explainer

                agent.explainer = make_explainer(model, args.method, output=model.steer_index,
                                                 target=args.target, layer=args.layer)
            result = drive_scenario(scenario, agent, hooks=hooks, **drive)
    metrics, interrupted = result.metrics, result.interrupted
    if args.json:
        out(json.dumps(metrics.to_dict()))
    else:
        out(metrics.table())
    if recorder is not None and recorder.runs:
        from carla_agent.recording.batch import finish_run

        for run in recorder.runs:
            # The live video has what was computed while driving; the report gets a
            # full-quality video rendered from the log with the chosen method.
            video, page = finish_run(run, methods=[args.method], model=model, progress=not args.quiet)
            out(f"recorded {run}" + (f" (report {page})" if page else ""))
    return 130 if interrupted else 0


def _hud_available() -> bool:
    from carla_agent.hud import hud_available

    return hud_available()
