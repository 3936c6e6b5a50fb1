"""``python -m carla_agent.server [--scenario NAME] [--host H] [--port P]`` (port 0: a free one).

The same options as ``carla-agent serve`` (:mod:`carla_agent.server.options`). Prints
``carla_agent serve: CARLA 0.9.16 on HOST:PORT ...`` once it is listening. SIGTERM is taken as
Ctrl-C (as ``carla-agent`` does): the server closes (its staged OpenDRIVE folders removed).
"""

import argparse
import logging
import sys

from carla_agent.errors import CarlaAgentError
from carla_agent.interrupts import sigterm_as_ctrl_c
from carla_agent.server.options import add_arguments, run

parser = argparse.ArgumentParser(prog="python -m carla_agent.server")
add_arguments(parser)
args = parser.parse_args()

sigterm_as_ctrl_c()
logging.basicConfig(level=args.log_level or "WARNING", format="%(levelname)s %(name)s: %(message)s")
try:
    sys.exit(run(args))
except CarlaAgentError as exc:  # as the carla-agent command line: one line, exit code 2
    sys.stderr.write(f"error: {exc}\n")
    sys.exit(2)
except KeyboardInterrupt:
    sys.exit(130)
