import sys

from carla_agent.cli import main

sys.exit(main(prog="python -m carla_agent"))
