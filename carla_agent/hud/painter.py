"""The HUD's drawing primitives on one pygame target surface: cached text, translucent boxes, RGB arrays.

Images go to the target through ``pygame.image.frombuffer`` (no per-frame ``surfarray.make_surface``).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import pygame

from carla_agent.hud.layout import Rect
from carla_agent.hud.images import resize_rgb
from carla_agent.hud.telemetry import PALETTE


class Painter:
    """Drawing primitives on one target surface: cached text, translucent boxes, RGB arrays.

    Colours are :data:`~carla_agent.hud.telemetry.PALETTE` names or RGB tuples.

    Attributes:
        font, small, big: the text fonts (monospace, ``font_px`` and smaller / twice as large).
        line_px, small_px: [px] line heights of ``font`` and ``small``.
        char_px, small_char_px: [px] width of one character of ``font`` and ``small``.
        target: the surface drawn on: the screen, or for a moment a cached layer.
    """

    def __init__(self, font_px: int) -> None:
        mono = pygame.font.match_font("dejavusansmono,ubuntumono,liberationmono,couriernew,mono")
        self.font = pygame.font.Font(mono, font_px)
        self.small = pygame.font.Font(mono, max(9, font_px - 2))
        self.big = pygame.font.Font(mono, font_px * 2)
        self.big.set_bold(True)
        self.line_px = self.font.get_linesize()
        self.small_px = self.small.get_linesize()
        self.char_px = self.font.size("M")[0]
        self.small_char_px = self.small.size("M")[0]
        self.target: Optional[pygame.Surface] = None
        self._text: Dict[tuple, pygame.Surface] = {}
        self._shades: Dict[tuple, pygame.Surface] = {}

    def text(self, text: str, colour, font=None) -> pygame.Surface:
        rgb = PALETTE[colour] if isinstance(colour, str) else colour
        font = font or self.font
        key = (text, rgb, id(font))
        surf = self._text.get(key)
        if surf is None:
            if len(self._text) > 2048:
                self._text.clear()
            surf = font.render(text, True, rgb)
            self._text[key] = surf
        return surf

    def put(self, text: str, xy: Tuple[int, int], colour="text", font=None, max_w: Optional[int] = None) -> int:
        """Draw text at ``xy``, shortened with '..' to ``max_w`` pixels; returns its width."""
        surf = self.text(text, colour, font)
        if max_w is not None and surf.get_width() > max_w and len(text) > 3:
            keep = max(1, int(len(text) * max_w / surf.get_width()) - 2)
            surf = self.text(text[:keep] + "..", colour, font)
        self.target.blit(surf, xy)
        return surf.get_width()

    def put_right(self, text: str, right_x: int, y: int, colour="text", font=None) -> int:
        surf = self.text(text, colour, font)
        self.target.blit(surf, (right_x - surf.get_width(), y))
        return surf.get_width()

    def shade(self, rect: Rect, alpha: int = 160) -> None:
        key = (rect.w, rect.h, alpha)
        surf = self._shades.get(key)
        if surf is None:
            if len(self._shades) > 64:
                self._shades.clear()
            surf = pygame.Surface((rect.w, rect.h), pygame.SRCALPHA)
            surf.fill((0, 0, 0, alpha))
            self._shades[key] = surf
        self.target.blit(surf, (rect.x, rect.y))

    def rgb(self, image: np.ndarray, rect: Rect, nearest: bool = False) -> None:
        """Scale an ``(H, W, 3)`` uint8 RGB image into ``rect`` and blit it."""
        arr = resize_rgb(image, (rect.w, rect.h), nearest)
        self.target.blit(pygame.image.frombuffer(arr, (rect.w, rect.h), "RGB"), (rect.x, rect.y))

    def rect(self, rect: Rect, colour, width: int = 0) -> None:
        pygame.draw.rect(self.target, PALETTE[colour] if isinstance(colour, str) else colour, rect.as_tuple(), width)

    def panel(self, rect: Rect, title: str) -> Rect:
        """A panel's background and title; returns the room inside it."""
        self.rect(rect, "panel")
        self.put(title, (rect.x + 8, rect.y + 4), "dim", self.small, max_w=rect.w - 16)
        return self.panel_inner(rect)

    def panel_inner(self, rect: Rect) -> Rect:
        """The room inside a panel, below its title."""
        top = rect.y + 6 + self.small_px
        return Rect(rect.x + 8, top, rect.w - 16, rect.bottom - top - 4)
