"""A CARLA 0.9.16-compatible server backed by the embedded simulator (issue 8).

``serve(scenario_name, host='127.0.0.1', port=2000)`` blocks; :class:`Server` is the
embeddable form (``start()``/``close()``, context manager). See docs/serve.md.
"""

from carla_agent.server.server import ServeError, Server, serve

__all__ = ["ServeError", "Server", "serve"]
