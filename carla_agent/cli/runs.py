"""``record`` (drive, log, video and report for a batch of scenarios), ``replay``
(re-render, A/B, re-simulate a recorded run) and ``report`` (write a run's HTML report again)."""

from __future__ import annotations

from carla_agent.cli.common import (add_backend_args, add_intervention, add_model, add_quiet, add_target,
                                    add_tf_threads, add_verbose, backend_options, check_out, comma_list,
                                    duration_s, out, scenario_names)


def add_parsers(sub) -> None:
    p = sub.add_parser("record", help="drive scenarios headless and record logs, attention videos and reports")
    add_verbose(p)
    p.add_argument("--scenarios", required=True, help="comma-separated scenario names or files")
    p.add_argument("--methods", default="visual_backprop", help="comma-separated saliency methods for the videos")
    add_intervention(p)
    p.add_argument("--duration", type=duration_s, default=None, help="time limit per drive in seconds")
    p.add_argument("--out", default="runs", help="parent folder of the runs (default runs/)")
    add_model(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gif", action="store_true", help="also write a short GIF per run")
    add_quiet(p)
    add_tf_threads(p)
    add_backend_args(p)
    p.set_defaults(func=record)

    p = sub.add_parser("replay", help="re-render attention videos from a recorded run, A/B, re-simulate")
    add_verbose(p)
    p.add_argument("run", help="run folder written by drive --record or record")
    p.add_argument("--methods", default="visual_backprop",
                   help="comma-separated methods, e.g. visual_backprop,occlusion")
    add_model(p, default=None, text="model to explain with (default: the run's own)")
    add_target(p)
    p.add_argument("--layer", default=None)
    p.add_argument("--ab-model", default=None, help="second model: A/B video on the same frames")
    p.add_argument("--redrive", default=None, help="drive the run's scenario again closed-loop with this model")
    p.add_argument("--verify", action="store_true", help="re-simulate an embedded run and check bit-identical frames")
    p.add_argument("--out", default=None, help="video file (default RUN/replay_<methods>.mp4)")
    p.add_argument("--format", default="mp4", choices=("mp4", "gif"))
    p.add_argument("--step", type=int, default=1, help="render every N-th frame")
    add_quiet(p)
    add_backend_args(p)  # --backend carla: replay the run's CARLA recording on the server
    p.set_defaults(func=replay)

    p = sub.add_parser("report", help="write a recorded run's HTML report again (RUN/report.html)")
    add_verbose(p)
    p.add_argument("run", help="run folder written by drive --record or record")
    add_model(p, default=None, text="model for the key frames' maps (default: the run's own, when still there)")
    p.add_argument("--out", default=None, help="HTML file (default RUN/report.html)")
    p.set_defaults(func=report)


def record(args) -> int:
    from carla_agent.network.tf_threads import set_tf_threads
    from carla_agent.recording.batch import record_batch

    names = scenario_names(args.scenarios)
    check_out(args.out)
    set_tf_threads(args.tf_threads)
    result = record_batch(names, args.methods, duration_s=args.duration, out_dir=args.out,
                          model_path=args.model, seed=args.seed, backend=args.backend,
                          backend_options=backend_options(args, record=True), gif=args.gif, progress=not args.quiet,
                          intervention_m=args.intervention_m)
    for run in result.runs:
        out(f"{run.run_dir}")
    out(f"index: {result.index}")
    return 0


def replay(args) -> int:
    from carla_agent.recording.replay import replay as replay_run

    if args.out:
        check_out(args.out, "file")
    if args.backend == "carla":
        from carla_agent.recording.carla_replay import replay_carla

        video = replay_carla(args.run, methods=comma_list(args.methods), model=args.model, target=args.target,
                             layer=args.layer, out=args.out, step=args.step, backend_options=backend_options(args),
                             progress=not args.quiet)
        out(f"video: {video.path} ({video.frames} frames replayed by the CARLA server)")
        return 0

    result = replay_run(args.run, methods=comma_list(args.methods), model=args.model, target=args.target,
                        layer=args.layer, ab_model=args.ab_model, out=args.out, fmt=args.format, step=args.step,
                        verify=args.verify, redrive_model=args.redrive, progress=not args.quiet)
    for k, rendered in enumerate(result.videos):
        skipped = f" ({len(rendered.skipped)} unreadable frame(s) left out)" if rendered.skipped else ""
        out(f"{'video' if k == 0 else 'ab_video'}: {rendered.video.path}{skipped}")
    for name in ("report", "redrive_run"):
        value = getattr(result, name, None)
        if value:
            out(f"{name}: {value}")
    if args.verify and getattr(result, "resim", None) is not None:
        out(f"re-simulation: {result.resim}")
        return 0 if result.resim.identical else 1
    return 0


def report(args) -> int:
    from carla_agent.recording.report import write_report

    if args.out:
        check_out(args.out, "file")
    out(f"report: {write_report(args.run, out=args.out, model=args.model)}")
    return 0
