import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A shell starts a background job (`.ci/run &`, nohup) with SIGINT ignored, and children inherit
# that: then the tests that send Ctrl-C (SIGINT) to a sweep or a ticking client see it ignored.
# Python's own handler here makes every child start with SIGINT at its default again.
import signal  # noqa: E402

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
