"""``Server``: the RPC port plus a streaming port, backed by :class:`WorldService`."""

from __future__ import annotations

import errno
import logging
import socket
import threading

from carla_agent.errors import CarlaAgentError
from carla_agent.server.rpc import RpcServer
from carla_agent.server.streams import StreamServer
from carla_agent.server.world_service import WorldService

log = logging.getLogger(__name__)


class ServeError(CarlaAgentError):
    """The server cannot start: its port is taken, its address is not this machine's, ..."""


def _bind_error(what: str, host: str, port: int, exc: BaseException) -> ServeError:
    """One line for a failed bind: what, where, why and what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, OverflowError):
        return ServeError(f"cannot listen on {where}: a port is 0..65535 (0: any free one)")
    if isinstance(exc, socket.gaierror):
        return ServeError(f"cannot listen on {where}: unknown host {host!r} ({exc.strerror}); "
                          "give an address of this machine, e.g. --host 127.0.0.1")
    if exc.errno == errno.EADDRINUSE:
        return ServeError(f"cannot listen on {where}: the {what} port {port} is already in use (a CARLA server "
                          "or another `serve`?); stop it or pick another port with --port (0: any free one)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ServeError(f"cannot listen on {where}: {host} is not an address of this machine; "
                          "use --host 127.0.0.1 (or 0.0.0.0 for every interface)")
    if exc.errno == errno.EACCES:
        return ServeError(f"cannot listen on {where}: permission denied (ports below 1024 need root); "
                          "pick another port with --port")
    return ServeError(f"cannot listen on {where}: {exc.strerror or exc}")


class Server:
    """A CARLA 0.9.16 server for the embedded world.

    Args:
        scenario: a scenario name/path (see ``load_scenario``) or a ``Scenario``.
        host, port: where the RPC port listens (port 0 picks a free one; see ``.port``). Loopback
            by default; ``0.0.0.0`` serves every interface, without any authentication (docs/serve.md).
        stream_port: the streaming port (0: a free one; CARLA uses port + 1).

    Raises:
        ServeError: a port is in use, the host is not this machine's, ... (one line, no traceback).
    """

    def __init__(self, scenario="gentle_curves", host: str = "127.0.0.1", port: int = 2000,
                 stream_port: int = 0, seed: int = 0, sync_grace_s: float = 2.0) -> None:
        if isinstance(scenario, str):
            from carla_agent.sim.scenario import load_scenario

            scenario = load_scenario(scenario)
        self.world = WorldService(scenario, seed=seed, sync_grace_s=sync_grace_s)
        try:
            self._streams = StreamServer(host, stream_port)
        except (OSError, OverflowError) as e:
            raise _bind_error("stream", host, stream_port, e) from None
        try:
            self._rpc = RpcServer(host, port, self.world.dispatch, self.world.on_disconnect)
        except (OSError, OverflowError) as e:
            self._streams.close()
            raise _bind_error("RPC", host, port, e) from None
        self.world.local_host = self._rpc.local_host  # tokens name the address each client reached
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


def serve(scenario_name, host: str = "127.0.0.1", port: int = 2000) -> None:
    """Serve until interrupted (Ctrl-C)."""
    with Server(scenario_name, host=host, port=port) as server:
        print(f"carla_agent serve: CARLA 0.9.16 on {server.host}:{server.port} "
              f"({'town' if server.world.scenario.town else 'scenario'} {server.world.scenario.name}); "
              f"Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
