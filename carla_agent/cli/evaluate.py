"""``evaluate``: how far each saliency map can be trusted (the faithfulness table, plots
and an HTML page). The one parser of this command."""

from __future__ import annotations

from carla_agent.cli.common import add_model, add_quiet, add_verbose, check_out, comma_list, out, scenario_names


def add_parsers(sub) -> None:
    from carla_agent.faithfulness.evaluate import DEFAULT_METHODS

    p = sub.add_parser("evaluate", help="how faithful each saliency method is: table, plots, HTML page")
    add_verbose(p)
    add_model(p)
    p.add_argument("--scenarios", default="gentle_curves",
                   help="comma-separated scenario names, YAML paths or drive-log folders")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help="comma-separated method names")
    p.add_argument("--frames", type=int, default=200, help="frames per scenario")
    p.add_argument("--stride", type=int, default=1, help="take every N-th frame")
    p.add_argument("--steps", type=int, default=20, help="points on each deletion / insertion curve")
    p.add_argument("--closed-loop-s", type=float, default=None,
                   help="also run the closed-loop causal test, each drive this many simulated seconds")
    p.add_argument("--closed-loop-share", type=float, default=0.1,
                   help="share of pixels blurred in the closed-loop test (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="out/evaluate")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from carla_agent.faithfulness.evaluate import evaluate

    check_out(args.out)
    table = evaluate(args.model, scenarios=scenario_names(args.scenarios), methods=comma_list(args.methods),
                     frames=args.frames, out_dir=args.out, steps=args.steps, stride=args.stride, seed=args.seed,
                     closed_loop_s=args.closed_loop_s, closed_loop_share=args.closed_loop_share,
                     progress=not args.quiet)
    out(table.markdown())
    out(f"plots and page: {args.out}/index.html")
    return 0
