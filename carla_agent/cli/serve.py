"""``serve``: the embedded world over CARLA 0.9.16's wire protocol. Its options live with
the server (:mod:`carla_agent.server.options`) so that ``python -m carla_agent.server``
takes exactly the same ones."""

from __future__ import annotations

from carla_agent.cli.common import add_verbose


def add_parsers(sub) -> None:
    from carla_agent.server.options import add_arguments, run

    p = sub.add_parser("serve", help="serve the embedded world over CARLA 0.9.16's protocol")
    add_verbose(p)
    add_arguments(p)
    p.set_defaults(func=run)
