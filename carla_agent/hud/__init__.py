"""The live pygame HUD (the only package that imports pygame).

Build it with :func:`make_hud`, pass it to ``Runner(hooks=[...])``, then
:meth:`HudHook.close`; :func:`drive_episodes` runs episodes until one ends
without a restart (BACKSPACE raises :class:`RestartEpisode`).
"""

from carla_agent.hud.app import HudHook, drive_episodes, hud_available, make_hud
from carla_agent.hud.config import HudConfig, HudError, RestartEpisode

__all__ = ["HudHook", "HudConfig", "HudError", "RestartEpisode", "make_hud", "drive_episodes", "hud_available"]
