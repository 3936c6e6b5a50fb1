import sys

from carla_agent.cli import main

sys.exit(main())
