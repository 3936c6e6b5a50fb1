"""The HUD's window: whether one can open here, and opening it safely.

Safely means without SDL's OpenGL probe (:func:`no_gl_probe`): on a desktop without a
GPU driver that probe crashed the process the moment the window opened.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Tuple

import pygame

from carla_agent.hud.config import HudError

log = logging.getLogger(__name__)


def hud_available() -> bool:
    """Whether a real window can open: a display is there, and SDL is not on its dummy/offscreen driver."""
    if os.environ.get("SDL_VIDEODRIVER", "").lower() in ("dummy", "offscreen"):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def no_gl_probe() -> None:
    """Keep SDL from opening an OpenGL context just to pick how to present the window.

    On Linux, SDL 2 decides between an OpenGL texture and an X11 shared-memory image
    for the window surface by creating a hidden GL window and reading the GL vendor
    (``ShouldUseTextureFramebuffer`` in SDL's ``SDL_video.c``). On a machine without a
    GPU driver that loads Mesa's llvmpipe, whose calls into LLVM resolve into the copy
    of LLVM that TensorFlow loaded with ``RTLD_GLOBAL``: a segmentation fault the moment
    the window opens (seen in a gdb backtrace under Xvfb). The HUD blits plain surfaces
    and needs no GL, so the shared-memory path is as fast. A user's own setting wins.
    """
    os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")


def open_window(size_wh: Tuple[int, int], title: str) -> pygame.Surface:
    """Open the HUD window of ``size_wh`` pixels; :class:`HudError` (one line) when none can open."""
    try:
        no_gl_probe()
        pygame.display.init()
        window = pygame.display.set_mode(size_wh)
    except pygame.error as exc:
        raise HudError(f"cannot open the HUD window ({exc}); run with --headless, "
                       "or check DISPLAY / WAYLAND_DISPLAY") from None
    pygame.display.set_caption(title)
    log.info("HUD window %dx%d, SDL video driver %s", *size_wh, pygame.display.get_driver())
    return window
