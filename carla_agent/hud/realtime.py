"""Keeping the HUD's window in step with the wall clock: each drawn frame waits the
:class:`~carla_agent.drive.pacing.Pacer`'s delay before it is shown.

The wait is cut into short slices with the window's keys read between them, so at a slow
speed factor (a frame every 0.8 s at 1/16) ESC, pause and the speed keys still answer at
once; a speed key changes the rest of the wait too.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from carla_agent.drive.pacing import format_speed

SLICE_S = 0.05  # [s] longest sleep between two reads of the keys while waiting


def wait_until_due(hud: Any, record: Any, amap: Any, schedule: str, poll: Callable[[Any], bool]) -> float:
    """Sleep until ``record``'s frame is due on ``hud.pacer``'s schedule; returns the seconds waited.

    ``poll(hud)`` reads the keys between slices (:func:`carla_agent.hud.keys.poll_keys`); a key
    that changes the view while waiting redraws the frame (``hud.redraw``).

    Raises:
        StopDrive: ESC or the window closed while waiting. RestartEpisode: BACKSPACE.
    """
    pacer = hud.pacer
    if pacer.unlimited:
        return 0.0
    started = time.monotonic()
    t = record.obs.sim_time_s
    while True:
        delay = pacer.delay_s(t, time.monotonic())
        if delay <= 0.0:
            return time.monotonic() - started
        time.sleep(min(delay, SLICE_S))
        if poll(hud) and not hud.state.paused:
            hud.redraw(record, amap, schedule)
        if hud.state.paused:
            return time.monotonic() - started  # the pause loop holds the frame from here


def set_speed(hud: Any, speed: float) -> None:
    """Simulated seconds per wall-clock second from now on (``math.inf``: max), and say so: the
    ``-`` and ``=`` keys. A headless HUD never waits, so it only says that."""
    if hud.config.headless:
        hud.notify("a headless HUD always runs as fast as it can")
        return
    hud.pacer.set_speed(speed, time.monotonic())
    hud.notify(f"speed factor {format_speed(hud.pacer.speed)}" + (" (real time)" if speed == 1.0 else ""))
