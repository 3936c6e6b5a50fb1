"""The options of ``serve``, shared by ``carla-agent serve`` and ``python -m carla_agent.server``
so that the two entry points cannot drift apart."""

from __future__ import annotations

import argparse
import logging


def add_arguments(p: argparse.ArgumentParser) -> None:
    from carla_agent.sim.scenario import DEFAULT_SCENARIO

    p.add_argument("--scenario", default=DEFAULT_SCENARIO, help=f"scenario to serve (default {DEFAULT_SCENARIO})")
    p.add_argument("--town", default=None, metavar="NAME",
                   help="serve a town instead (grid_small, ring_multilane; clients may also load_world(NAME))")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default loopback; 0.0.0.0 serves every interface, with no "
                        "authentication: see docs/serve.md)")
    p.add_argument("--port", "-p", type=_port, default=2000,
                   help="RPC port (0: any free one); the stream port is any free one (clients learn it)")
    p.add_argument("--log-level", default=None, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   type=str.upper, help="logging level (overrides -v)")


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0..65535; 0: any free one)")
    return port


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    from carla_agent.server.server import serve

    if args.log_level:
        logging.getLogger().setLevel(args.log_level)
    scenario = args.scenario
    if args.town is not None:
        from carla_agent.sim.embedded.roadnet.catalog import shipped_towns
        from carla_agent.sim.embedded.town_route import served_town_scenario

        shipped_towns().get(args.town)  # an unknown name: an error listing the towns
        scenario = served_town_scenario(args.town)
    serve(scenario, host=args.host, port=args.port)
    return 0
