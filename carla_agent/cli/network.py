"""The network's commands: ``collect`` (expert driving -> dataset), ``train`` (PilotNet),
``methods`` (the saliency registry) and ``explain`` (maps for image files)."""

from __future__ import annotations

import json

from carla_agent.cli.common import (add_backend_args, add_model, add_quiet, add_saliency_args, add_verbose,
                                    backend_options, bounded_float, check_out, comma_list, duration_s, load_model,
                                    out, refuse_existing_folder)


def add_parsers(sub) -> None:
    p = sub.add_parser("collect", help="drive the noisy expert and write a training dataset")
    add_verbose(p)
    p.add_argument("--scenarios", default="", help="comma-separated names (default: every embedded scenario)")
    p.add_argument("--out", required=True, help="new dataset directory")
    p.add_argument("--force", action="store_true",
                   help="overwrite --out when it exists and is not empty (its dataset shards are replaced)")
    p.add_argument("--episodes", type=int, default=2, help="episodes per scenario")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=duration_s, default=None, help="per-episode limit in seconds")
    p.add_argument("--weathers", default="", help="comma-separated weather presets to cycle through")
    p.add_argument("--driver-model", default=None,
                   help="DAgger: let this model drive (the expert still labels every frame)")
    p.add_argument("--lane-shifts", type=bounded_float("--lane-shifts", "shifts per minute", 0.0, 60.0, True),
                   default=0.0, metavar="PER_MIN",
                   help="town routes: move the car a lane off its route lane this often (per minute, on "
                        "average), so that the data has lane changes back (CHANGELANELEFT/RIGHT)")
    add_quiet(p)
    add_backend_args(p)
    p.set_defaults(func=collect)

    p = sub.add_parser("train", help="train PilotNet on a dataset")
    add_verbose(p)
    p.add_argument("--data", required=True, help="dataset directory written by collect")
    p.add_argument("--out", required=True, help="model file to write (.keras)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--commands", choices=("auto", "on", "off"), default="auto",
                   help="the branched PilotNet with a route-command input: auto (default) when the data has "
                        "commands other than LANEFOLLOW (town routes)")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="fine-tune: start from this .keras PilotNet's weights (its head goes into every branch)")
    p.add_argument("--turn-repeat", type=int, default=1, metavar="K",
                   help="frames with a junction command appear K times per epoch (default 1)")
    p.add_argument("--freeze", default="", metavar="LAYERS",
                   help="comma-separated layer names kept at their starting weights (e.g. conv1,conv2,conv3)")
    p.add_argument("--only-commands", default="", metavar="NAMES",
                   help="train on these commands' frames only (e.g. LEFT,RIGHT,STRAIGHT: with the other "
                        "branches frozen, their frames would only cost time)")
    p.set_defaults(func=train)

    p = sub.add_parser("methods", help="list the saliency methods")
    add_verbose(p)
    p.set_defaults(func=methods)

    p = sub.add_parser("explain", help="saliency map, overlay and prediction for image files")
    add_verbose(p)
    p.add_argument("images", nargs="+", help="PNG/JPG camera frames")
    add_model(p)
    p.add_argument("--output", default=None, help="output to explain, by name or index (default: steering)")
    p.add_argument("--out", default="out", help="folder for the results (default out/)")
    add_saliency_args(p)
    p.set_defaults(func=explain)


def collect(args) -> int:
    from carla_agent.network.collect import collect as collect_data
    from carla_agent.sim.scenario import shipped_scenarios

    refuse_existing_folder(args.out, args.force, "dataset folder")
    if args.force:  # --force replaces an existing dataset: its old shards would mix with the new ones
        from pathlib import Path

        for shard in Path(args.out).glob("shard_*.npz"):
            shard.unlink()
    names = comma_list(args.scenarios) or [n for n in shipped_scenarios() if not n.startswith(("carla_", "town_"))]
    stats = collect_data(names, args.out, episodes=args.episodes, seed=args.seed, duration_s=args.duration,
                         backend=args.backend or "embedded", backend_options=backend_options(args),
                         weathers=tuple(comma_list(args.weathers)), driver_model=args.driver_model,
                         lane_shifts_per_min=args.lane_shifts, progress=not args.quiet)
    out(json.dumps(stats))
    return 0


def train(args) -> int:
    from carla_agent.network.train import train as train_model

    check_out(args.out, "file")
    metrics = train_model(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                          patience=args.patience, learning_rate=args.learning_rate, commands=args.commands,
                          init_from=args.init_from, turn_repeat=args.turn_repeat,
                          freeze=tuple(comma_list(args.freeze)),
                          only_commands=tuple(comma_list(args.only_commands)))
    out(json.dumps(metrics, indent=2, default=str))
    return 0


def methods(args) -> int:
    from carla_agent.saliency import METHODS

    width = max(len(n) for n in METHODS.names())
    for name, spec in METHODS.items():
        out(f"{name:<{width}}  {spec.description}")
    return 0


def explain(args) -> int:
    from carla_agent.saliency.explain import explain_images

    check_out(args.out)
    output = int(args.output) if args.output is not None and args.output.lstrip("-").isdigit() else args.output
    model = load_model(args.model)
    written = explain_images(args.images, model, method=args.method, target=args.target,
                             output=model.steer_index if output is None else output, out_dir=args.out,
                             layer=args.layer)
    for path in written:
        out(str(path))
    return 0
