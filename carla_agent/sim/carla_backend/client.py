"""The connection to a CARLA server: the one module of the package that imports ``carla``.

It does so lazily, in :func:`import_carla`: importing the backend needs neither
the wheel nor a server. :func:`connect` compares client and server versions and
fails within ``timeout_s`` with one line saying where it tried and how to start
a server. Maps are matched by the last part of their path.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Iterable, Optional, Tuple

from carla_agent.errors import BackendError

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 2000
DEFAULT_TM_PORT = 8000
#: The CARLA release this client is written and tested against.
CARLA_VERSION = "0.9.16"


def import_carla():
    """The ``carla`` module, or a :class:`BackendError` saying how to install it."""
    try:
        import carla  # noqa: PLC0415 - the only place the package imports carla
    except ImportError as exc:
        raise BackendError(
            f"the CARLA backend needs CARLA's Python client: pip install carla=={CARLA_VERSION} "
            f"(CPython 3.11 or 3.12 with the pinned numpy), or use --backend embedded ({exc})"
        ) from None
    return carla


def _version_key(version: str) -> Tuple:
    m = re.match(r"\s*(\d+)\.(\d+)\.(\d+)", version or "")
    return tuple(int(g) for g in m.groups()) if m else (version or "",)


def server_hint(port: int) -> str:
    return (f"start the server (CARLA {CARLA_VERSION}) with `./CarlaUE4.sh -RenderOffScreen -carla-rpc-port={port}`, "
            "or use the embedded simulator with `--backend embedded`")


def connect(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, timeout_s: float = 10.0,
            client_factory: Optional[Callable] = None, allow_version_mismatch: bool = False):
    """A ``carla.Client`` that answered, with matching versions: ``(client, client_version, server_version)``.

    ``client_factory(host, port)`` replaces ``carla.Client`` (the tests' double).
    """
    carla = import_carla()
    factory = client_factory if client_factory is not None else carla.Client
    where = f"{host}:{port}"
    try:
        client = factory(host, int(port))
        client.set_timeout(float(timeout_s))
        server_version = client.get_server_version()
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        why = f"no answer within {timeout_s:g} s" if "time-out" in first or "timeout" in first.lower() else first
        raise BackendError(f"cannot connect to a CARLA server at {where}: {why}; {server_hint(port)}") from None
    client_version = client.get_client_version()
    if _version_key(client_version) != _version_key(server_version):
        if not allow_version_mismatch:
            raise BackendError(
                f"CARLA version mismatch: the Python client is {client_version} but the server at {where} is "
                f"{server_version}; install the matching client (pip install carla=={server_version}) or start a "
                f"{client_version} server, or pass --allow-version-mismatch to try anyway")
        log.warning("CARLA client %s and server %s differ; continuing as asked", client_version, server_version)
    return client, client_version, server_version


def is_timeout(exc: BaseException) -> bool:
    """True for the error ``carla`` raises when the server stopped answering."""
    return isinstance(exc, RuntimeError) and "time-out" in str(exc)


def map_key(name: str) -> str:
    """The last path part of a map name: ``/Game/Carla/Maps/Town04`` -> ``Town04``."""
    return str(name).rstrip("/").split("/")[-1]


def match_map(wanted: str, available: Iterable[str]) -> Optional[str]:
    """The available map that ``wanted`` names (by last path part; ``_Opt`` optional), or None."""
    paths = {map_key(p): p for p in available}
    want = map_key(wanted)
    for candidate in (want, want + "_Opt", want[:-4] if want.endswith("_Opt") else None):
        if candidate and candidate in paths:
            return paths[candidate]
    lower = {k.lower(): v for k, v in paths.items()}
    return lower.get(want.lower())
