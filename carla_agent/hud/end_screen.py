"""The end of an episode in the window: the last frame with the episode's summary (the metrics
table) on top, held until the person restarts (BACKSPACE) or quits (ESC or the window's close
button). ``drive --close-at-end`` skips it (for scripts).

The screenshot key still works while the summary is held; other keys do nothing there.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import pygame

from carla_agent.hud.keys import KEYMAP
from carla_agent.hud.layout import Rect
from carla_agent.hud.painter import Painter

log = logging.getLogger(__name__)

POLL_S = 0.05  # [s] how often the held window reads its events
FOOTER = "BACKSPACE  restart      ESC  quit      F12  screenshot"


def draw_summary(p: Painter, size_wh, title: str, lines: Sequence[str], footer: str = FOOTER) -> Rect:
    """A box in the middle of the window: ``title`` (large), ``lines`` (the metrics table) and
    ``footer`` (the keys that end the hold). Returns the box."""
    w, h = size_wh
    widths = [p.text(title, "text", p.big).get_width()] + [p.text(line, "text").get_width()
                                                            for line in (*lines, footer)]
    box_w = min(w - 20, max(widths) + 40)
    box_h = min(h - 20, p.big.get_linesize() + (len(lines) + 2) * p.line_px + 40)
    box = Rect((w - box_w) // 2, (h - box_h) // 2, box_w, box_h)
    p.shade(Rect(0, 0, w, h), 90)
    p.rect(box, "panel")  # opaque: the panels under it would show through the text
    p.rect(box, "dim", 1)
    x, y = box.x + 20, box.y + 14
    p.put(title, (x, y), "text", p.big, max_w=box.w - 40)
    y += p.big.get_linesize() + 6
    for line in lines:
        p.put(line, (x, y), "text", max_w=box.w - 40)
        y += p.line_px
    p.put(footer, (x, y + p.line_px // 2), "predicted", max_w=box.w - 40)
    return box


def show(hud: Any, title: str, lines: Sequence[str]) -> None:
    """Draw the HUD's last frame with the summary box on top, and show it."""
    if hud.current_record is not None:
        hud.redraw(hud.current_record, hud.current_map, "done", present=False)
    draw_summary(hud.paint, hud.config.size_wh, title, lines)
    if hud.window is not None:
        pygame.display.flip()


def ended_by_itself(record: Any, context: Any) -> bool:
    """Whether the episode whose last frame is ``record`` ended at its route's end or time limit
    (not by a key or the close button). ``context``: its :class:`~carla_agent.drive.runner.DriveContext`."""
    limit = context.duration_s if context is not None else float("inf")
    return bool(record.obs.done or record.obs.sim_time_s >= limit - 1e-9)


def hold(hud: Any, metrics: Any) -> str:
    """Show ``metrics`` over the last frame and wait for the person.

    Returns:
        ``restart`` (BACKSPACE; ``hud.restart_requested`` is set, so
        :func:`~carla_agent.drive.session.drive_scenario` drives again) or ``quit`` (ESC, the
        window closed, or Ctrl-C in the terminal).
    """
    title = f"{metrics.scenario}: episode finished"
    lines = metrics.table().splitlines()
    show(hud, title, lines)
    try:
        while True:
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    return "quit"
                if event.type != pygame.KEYDOWN:
                    continue
                action = KEYMAP.get(event.key)
                if action == "quit":
                    return "quit"
                if action == "restart":
                    hud.restart_requested = True
                    return "restart"
                if action == "screenshot":
                    hud.handle_action("screenshot")
                    show(hud, title, lines)
            _idle()
    except KeyboardInterrupt:  # Ctrl-C in the terminal: the same as ESC, so later hooks still finish
        log.info("interrupted while the summary was shown")
        return "quit"


def _idle() -> None:
    time.sleep(POLL_S)
