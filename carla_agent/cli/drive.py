"""``drive``: one closed-loop drive with the network (a HUD window when a display is
there), and ``scenarios``: the shipped scenarios."""

from __future__ import annotations

import argparse
import json

from carla_agent.cli.common import (add_backend_args, add_intervention, add_model, add_saliency_args, add_tf_threads, add_verbose,
                                    camera_resolution, check_out, duration_s, load_model, out, speed_factor,
                                    window_resolution)


def add_parsers(sub) -> None:
    from carla_agent.sim.scenario import DEFAULT_SCENARIO

    p = sub.add_parser("drive", help="drive a scenario closed-loop with the steering network")
    add_verbose(p)
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help=f"scenario name or YAML file (default {DEFAULT_SCENARIO})")
    add_model(p)
    add_intervention(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=duration_s, default=None,
                   help="time limit in simulated seconds (default: the scenario's)")
    p.add_argument("--headless", action="store_true", help="no window")
    p.add_argument("--camera-res", type=camera_resolution, default=None, metavar="WxH",
                   help="camera resolution, e.g. 800x600, at most 1920x1080 (default: the scenario's)")
    p.add_argument("--sync", action="store_true", default=True,
                   help="synchronous mode (always on: one tick per step, as in CARLA's synchronous mode)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_saliency_args(p)
    add_window_args(p)
    p.add_argument("--record", action="store_true", help="record a drive log and attention video under --out")
    p.add_argument("--out", default="runs", help="folder for recorded runs (default runs/)")
    add_tf_threads(p)
    add_backend_args(p)
    p.set_defaults(func=run)

    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    add_verbose(p)
    p.set_defaults(func=list_scenarios)


class _EveryFrames(argparse.Action):
    """``--screenshot-every N DIR`` -> ``(N, DIR)`` with N a whole number >= 1."""

    def __call__(self, parser, namespace, values, option_string=None):
        frames, folder = values
        n = int(frames) if frames.isdigit() else 0
        if n < 1:
            parser.error(f"argument {option_string}: N is a whole number of frames >= 1, got {frames!r}")
        setattr(namespace, self.dest, (n, folder))


def add_window_args(p) -> None:
    """The HUD window's options: size, speed factor, end of the scenario, screenshots."""
    g = p.add_argument_group("window (the live HUD)")
    g.add_argument("--res", type=window_resolution, default=(1280, 720), metavar="WxH",
                   help="window size, as in CARLA's examples (default 1280x720)")
    # The old name of --res, from when --res set the camera: still accepted, no longer shown.
    g.add_argument("--hud-res", type=window_resolution, dest="res", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    g.add_argument("--speed", type=speed_factor, default=1.0, metavar="X",
                   help="simulated seconds per wall-clock second in the window: 1 = real time (default), 0.5, 2, "
                        "... or max (as fast as it goes); the - and = keys halve and double it. Headless drives "
                        "always go as fast as they can")
    g.add_argument("--close-at-end", action="store_true",
                   help="close the window when the scenario ends (default: it shows the summary until "
                        "BACKSPACE restarts or ESC quits)")
    g.add_argument("--screenshot-dir", default=".", metavar="DIR",
                   help="where the screenshot key (F12) saves PNGs (default: the current folder)")
    g.add_argument("--screenshot-every", nargs=2, action=_EveryFrames, default=None, metavar=("N", "DIR"),
                   help="save the HUD every N frames as DIR/frame_000123.png (with --headless: the HUD drawn "
                        "offscreen)")


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
    return name, backend_options(argparse.Namespace(**{**vars(args), "backend": name}),
                                 record=bool(getattr(args, "record", False)))


def _load_scenario(args):
    from dataclasses import replace

    from carla_agent.sim.scenario import load_scenario

    sc = load_scenario(args.scenario)
    if getattr(args, "camera_res", None):
        w, h = args.camera_res
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
    window = not args.headless and _hud_available()
    # --screenshot-every without a window draws the HUD offscreen, as fast as it goes.
    use_hud = window or args.screenshot_every is not None
    # The simulator first: an unreachable server is reported before a slow model load.
    if args.record or window:
        check_out(args.out)
    if args.record:
        from carla_agent.recording.disk_space import check_free_space

        check_free_space(args.out)
    with make_simulator(backend, **options) as sim:
        model = load_model(args.model, args.tf_threads)
        agent = NetworkAgent(model, scenario.target_speed_mps)
        recorder = None
        if args.record or window:
            from carla_agent.recording.batch import make_recorder

            # --record never drops frames; the HUD's R key never stalls the window.
            recorder = make_recorder(args.out, live_video=True, when_full="block" if args.record else "drop",
                                     model=model)
            recorder.autostart = bool(args.record)
        drive = dict(sim=sim, seed=args.seed, duration_s=args.duration, intervention_m=args.intervention_m)
        hooks = [] if recorder is None else [recorder]
        if not args.quiet and not window:
            from carla_agent.drive.progress import ProgressHook

            hooks.insert(0, ProgressHook(args.duration or scenario.duration_s))
        if use_hud:
            from carla_agent.hud import make_hud

            every_n, every_dir = args.screenshot_every or (0, None)
            hud = make_hud(model, scenario, method=args.method, target=args.target, layer=args.layer,
                           res=args.res, headless=not window, speed=args.speed, hold_at_end=not args.close_at_end,
                           screenshot_dir=args.screenshot_dir, screenshot_every=every_n,
                           screenshot_every_dir=every_dir,
                           on_record_toggle=lambda on: recorder.start() if on else recorder.stop())
            with hud:
                result = drive_scenario(scenario, agent, hooks=[hud, *hooks], restart=hud.consume_restart, **drive)
        else:
            if args.record:
                from carla_agent.saliency import make_explainer

                agent.explainer = make_explainer(model, args.method, output=model.steer_index,
                                                 target=args.target, layer=args.layer)
            result = drive_scenario(scenario, agent, hooks=hooks, **drive)
    metrics, interrupted = result.metrics, result.interrupted
    episodes = result.every_episode or (metrics,)
    if args.json:
        for m in episodes:  # one JSON object a line, one line per episode (the HUD's BACKSPACE restarts)
            out(json.dumps(m.to_dict()))
    else:
        for k, m in enumerate(episodes, 1):
            if len(episodes) > 1:
                out(("" if k == 1 else "\n") + f"episode {k} of {len(episodes)}")
            out(m.table())
    if recorder is not None and recorder.disk_full:
        from carla_agent.recording.batch import raise_if_disk_full

        raise_if_disk_full(recorder)
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
