"""The live pygame HUD (the only package that imports pygame).

Build it with :func:`make_hud` and drive with it among the hooks of
:func:`~carla_agent.drive.session.drive_scenario` (``restart=hud.consume_restart``
runs episodes until one ends without BACKSPACE); then :meth:`HudHook.close`.
"""

from carla_agent.hud.app import HudHook, make_hud
from carla_agent.hud.display import hud_available
from carla_agent.hud.config import HudConfig, HudError, RestartEpisode

__all__ = ["HudHook", "HudConfig", "HudError", "RestartEpisode", "make_hud", "hud_available"]
