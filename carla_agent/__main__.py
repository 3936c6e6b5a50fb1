import logging
import os
import sys

from carla_agent.cli import main

code = main(prog="python -m carla_agent")
if "carla" in sys.modules:
    # Everything is closed by now (actors destroyed, settings restored, logs flushed by main). The
    # carla wheel's own teardown at interpreter exit can abort ("corrupted size vs. prev_size",
    # SIGABRT) or hang in its streaming threads; leave without it so the exit code is ours.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)
sys.exit(code)
