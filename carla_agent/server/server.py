"""``Server``: the RPC port plus a streaming port, backed by :class:`WorldService`."""

from __future__ import annotations

import logging
import threading

from carla_agent.server.rpc import RpcServer
from carla_agent.server.streams import StreamServer
from carla_agent.server.world_service import WorldService

log = logging.getLogger(__name__)


class Server:
    """A CARLA 0.9.16 server for the embedded world.

    Args:
        scenario: a scenario name/path (see ``load_scenario``) or a ``Scenario``.
        host, port: where the RPC port listens (port 0 picks a free one; see ``.port``).
        stream_port: the streaming port (0: a free one; CARLA uses port + 1).
    """

    def __init__(self, scenario="gentle_curves", host: str = "127.0.0.1", port: int = 2000,
                 stream_port: int = 0, seed: int = 0, sync_grace_s: float = 2.0) -> None:
        if isinstance(scenario, str):
            from carla_agent.sim.scenario import load_scenario

            scenario = load_scenario(scenario)
        self.world = WorldService(scenario, seed=seed, sync_grace_s=sync_grace_s)
        self._streams = StreamServer(host, stream_port)
        try:
            self._rpc = RpcServer(host, port, self.world.dispatch, self.world.on_disconnect)
        except OSError:
            self._streams.close()
            raise
        self.host, self.port = self._rpc.host, self._rpc.port
        self.stream_port = self._streams.port
        self._started = False

    def start(self) -> "Server":
        if not self._started:
            self._streams.start()
            self.world.start(self._streams)
            self._rpc.start()
            self._started = True
            log.info("serving %s on %s:%d (streams on %d)", self.world.scenario.name, self.host, self.port,
                     self.stream_port)
        return self

    def close(self) -> None:
        self._rpc.close()
        self.world.close()
        self._streams.close()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def serve(scenario_name: str, host: str = "127.0.0.1", port: int = 2000) -> None:
    """Serve until interrupted (Ctrl-C)."""
    with Server(scenario_name, host=host, port=port) as server:
        print(f"carla_agent serve: CARLA 0.9.16 on {server.host}:{server.port} "
              f"(scenario {server.world.scenario.name}); Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
