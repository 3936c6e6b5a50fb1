"""``python -m carla_agent.server [--scenario NAME] [--host H] [--port P]`` (port 0: a free one).

Prints ``carla_agent serve: CARLA 0.9.16 on HOST:PORT ...`` once it is listening.
"""

import argparse
import logging

from carla_agent.server.server import serve

p = argparse.ArgumentParser(prog="python -m carla_agent.server")
p.add_argument("--scenario", default="gentle_curves")
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=2000)
p.add_argument("--log-level", default="WARNING")
a = p.parse_args()
logging.basicConfig(level=getattr(logging, a.log_level.upper()), format="%(levelname)s %(name)s: %(message)s")
serve(a.scenario, host=a.host, port=a.port)
