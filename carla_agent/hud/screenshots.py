"""Pictures of the HUD: the screenshot key (one PNG of the window) and ``--screenshot-every N DIR``
(one PNG every N frames, named after the frame).

Both save the HUD's own surface: the window, or the offscreen surface of a headless HUD,
so a headless drive with ``--screenshot-every`` gives the same pictures a window would show.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import pygame

from carla_agent.hud.config import HudError

log = logging.getLogger(__name__)


class Screenshots:
    """Where and when the HUD saves itself as PNG.

    Args:
        key_dir: folder of the screenshot key's pictures (created on the first one).
        every_frames: save every this many frames (ticks of the episode, from its first); 0: never.
        every_dir: folder of those pictures, ``frame_000123.png`` (created now; None with ``every_frames`` 0).

    Attributes:
        saved: paths written so far, oldest first.

    Raises:
        HudError: ``every_frames`` < 0, ``every_frames`` without a folder, or a folder that cannot be made.
    """

    def __init__(self, key_dir: str = ".", every_frames: int = 0, every_dir: Optional[str] = None) -> None:
        if every_frames < 0:
            raise HudError(f"--screenshot-every expects a number of frames >= 1, got {every_frames}")
        if every_frames and not every_dir:
            raise HudError("--screenshot-every N DIR: give the folder the pictures go to")
        self.key_dir = Path(key_dir)
        self.every_frames = int(every_frames)
        self.every_dir = Path(every_dir) if every_dir else None
        self.saved: list = []
        if self.every_dir is not None:
            _make_dir(self.every_dir, "--screenshot-every")

    def due(self, tick: int) -> bool:
        """Whether tick ``tick`` of the episode (0 = its first frame) is one to save."""
        return self.every_frames > 0 and tick % self.every_frames == 0

    def capture(self, surface: pygame.Surface, frame: int) -> Path:
        """Save ``surface`` as ``every_dir/frame_000123.png`` (``frame``: the camera's frame id)."""
        path = self.every_dir / f"frame_{frame:06d}.png"
        return self._save(surface, path)

    def snap(self, surface: pygame.Surface, frame: int) -> str:
        """The screenshot key: save ``surface`` into ``key_dir`` under a new name with the time and
        frame. Returns what to tell the person: ``screenshot PATH``, or why it failed (a full disk
        or a read-only folder must not stop the drive)."""
        stamp = time.strftime("%Y%m%d_%H%M%S")
        path = self.key_dir / f"carla_agent_{stamp}_frame_{frame:06d}.png"
        n = 1
        while path.exists():
            n += 1
            path = self.key_dir / f"carla_agent_{stamp}_frame_{frame:06d}_{n}.png"
        try:
            _make_dir(self.key_dir, "--screenshot-dir")
            return f"screenshot {self._save(surface, path)}"
        except (HudError, OSError, pygame.error) as exc:
            log.warning("screenshot %s failed: %s", path, exc)
            return f"screenshot failed: {exc}"

    def _save(self, surface: pygame.Surface, path: Path) -> Path:
        pygame.image.save(surface, str(path))
        self.saved.append(path)
        log.debug("saved %s", path)
        return path


def _make_dir(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HudError(f"{option} {path}: cannot create the folder ({exc.strerror}); pick a writable one") from None


def take_screenshot(hud: Any) -> None:
    """The screenshot key: save the HUD as drawn now into ``hud.config.screenshot_dir``, and say where."""
    record = hud.current_record
    hud.notify(hud.shots.snap(hud.screen, record.obs.frame if record is not None else 0))
