"""``sweep``: a scenario x model x seed x weather grid on Ray, resumable, with a table and a comparison page."""

from __future__ import annotations

from carla_agent.cli.common import (add_backend_args, add_quiet, add_tf_threads, add_verbose, comma_list, duration_s,
                                    out)


def _positive_int(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expects a whole number >= 1, got {text!r}")
    return n


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="drive a scenario x model x seed x weather grid on Ray; table and comparison")
    add_verbose(p)
    p.add_argument("--file", default=None, help="YAML sweep file (the options below override its keys)")
    p.add_argument("--scenarios", default=None, help="comma-separated scenario names or files, or 'all'")
    p.add_argument("--models", default=None, help="comma-separated .keras / .h5 files (default: the shipped model)")
    p.add_argument("--seeds", default=None, help="seeds: 0,1,2 or a range 0-4 (default 0)")
    p.add_argument("--weathers", default=None,
                   help="comma-separated weather presets; 'scenario' keeps each scenario's own (the default)")
    p.add_argument("--duration", type=duration_s, default=None, help="time limit per drive in simulated seconds")
    p.add_argument("--methods", default=None,
                   help="saliency methods of each cell's attention video (default visual_backprop; 'none': no video)")
    p.add_argument("--faithfulness", default=None,
                   help="comma-separated saliency methods whose faithfulness is measured on each cell's frames")
    p.add_argument("--retries", type=int, default=None, help="extra attempts for a cell that fails (default 1)")
    p.add_argument("--cell-timeout", type=float, default=None, help="wall-clock seconds per attempt (default 1800)")
    p.add_argument("--out", default="sweep", help="the sweep's folder (default sweep/); a rerun resumes it")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds other files or a sweep with other settings")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="cells at once (default: the CPUs Ray sees)")
    p.add_argument("--address", default=None, help="join this Ray cluster (ray start --head prints it)")
    p.add_argument("--carla-servers", default=None, metavar="HOST:PORT,...",
                   help="one CARLA server per drive at a time, one Ray actor each (--backend carla)")
    p.add_argument("--ship-runs", action="store_true",
                   help="workers send their run folders back to this process (no shared path needed)")
    add_quiet(p)
    add_tf_threads(p)
    add_backend_args(p)
    p.set_defaults(func=run)


def spec_from_args(args):
    """The :class:`~carla_agent.sweep.grid.SweepSpec` of a command line (and its ``--file``)."""
    from carla_agent.sweep.grid import SweepError, SweepSpec, load_sweep_file, parse_scenarios, parse_seeds

    methods = None
    if args.methods is not None:
        methods = () if args.methods.strip().lower() == "none" else tuple(comma_list(args.methods))
    kw = dict(scenarios=parse_scenarios(comma_list(args.scenarios)) if args.scenarios else None,
              models=tuple(comma_list(args.models)) if args.models else None,
              seeds=parse_seeds(args.seeds) if args.seeds is not None else None,
              weathers=tuple(comma_list(args.weathers)) if args.weathers else None,
              duration_s=args.duration, methods=methods,
              faithfulness=tuple(comma_list(args.faithfulness)) if args.faithfulness else None,
              retries=args.retries, timeout_s=args.cell_timeout, backend=args.backend,
              tf_threads=args.tf_threads)
    if args.file:
        return load_sweep_file(args.file, **kw)
    if not kw["scenarios"]:
        raise SweepError("sweep: give --scenarios a,b (or 'all') or a sweep --file")
    return SweepSpec(**{k: v for k, v in kw.items() if v is not None})


def run(args) -> int:
    from carla_agent.sweep.pool import parse_servers
    from carla_agent.sweep.run import run_sweep

    spec = spec_from_args(args)
    servers = parse_servers(args.carla_servers, args.tm_port) if args.carla_servers else ()
    if servers and spec.backend != "carla":
        from carla_agent.sweep.grid import SweepError

        raise SweepError("--carla-servers drives on CARLA: add --backend carla")
    result = run_sweep(spec, args.out, address=args.address, workers=args.workers, carla_servers=servers,
                       carla_timeout_s=args.timeout, ship_runs=args.ship_runs, progress=not args.quiet,
                       force=args.force)
    out(f"cells: {len(result.results)} ({len(result.ran)} run now, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed)")
    for r in result.failed:
        out(f"failed: {r.cell.cell_id}: {r.error}")
    out(f"table: {args.out}/results.parquet, {args.out}/results.csv")
    out(f"comparison: {result.compare}")
    if result.interrupted:
        raise KeyboardInterrupt
    return 1 if result.failed else 0
