"""The HUD's keyboard: pygame key codes to actions, and what each action does to the HUD.

Keys follow CARLA's ``PythonAPI/examples/manual_control.py`` where it has them:
W/S/A/D and the arrows drive, Q toggles reverse, Space is the hand brake, P the
autopilot (here: the expert takes the wheel), C (Shift+C) the weather, TAB the
camera (here: the layout), R recording, BACKSPACE restart, F1 the HUD, H and ``?``
help, ESC quit. The HUD's own keys are only where CARLA has none: M manual
takeover, 1-9 method, T target, O overlay style, [ ] opacity, L layer, Pause or
``.`` pause (P is the autopilot), N single step.

* :data:`KEYMAP` and :data:`DRIVE_KEYS`: key codes to the action names of
  :data:`carla_agent.hud.controls.ACTIONS` (plus ``method:<1-9>``) and to held driving
  keys (:data:`carla_agent.hud.controls.DRIVE_NAMES`); :func:`action_of` adds the
  shifted keys (Shift+C, ``?``);
* :data:`HANDLERS`: action name -> handler ``(hud) -> None``; :func:`handle_action`
  dispatches one action (what the HUD's :meth:`~carla_agent.hud.app.HudHook.handle_action` does);
* :func:`poll_keys`: reads the window's pending events (keys, driving keys held, the close
  button); :func:`pause_loop` holds a frame while paused (Pause or ``.``, N).

The handlers act on the :class:`~carla_agent.hud.app.HudHook` they are given: its
``state`` (:class:`~carla_agent.hud.controls.HudState`), ``notify`` (the toast) and
``show_selected`` (switch the map to the method, target and layer in ``state``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Optional

import pygame

from carla_agent.drive.pacing import double, halve
from carla_agent.drive.runner import StopDrive
from carla_agent.hud.config import RestartEpisode
from carla_agent.hud.controls import cycle
from carla_agent.hud.explainers import TARGETS, uses_layer, uses_target
from carla_agent.hud.layout import LAYOUTS
from carla_agent.hud.realtime import set_speed
from carla_agent.hud.screenshots import take_screenshot
from carla_agent.saliency.compose import OVERLAY_STYLES

log = logging.getLogger(__name__)

KEYMAP: Dict[int, str] = {
    pygame.K_t: "target", pygame.K_o: "overlay_style", pygame.K_LEFTBRACKET: "alpha_down",
    pygame.K_RIGHTBRACKET: "alpha_up", pygame.K_l: "layer", pygame.K_TAB: "layout", pygame.K_PAUSE: "pause",
    pygame.K_PERIOD: "pause", pygame.K_n: "step", pygame.K_r: "record", pygame.K_m: "manual",
    pygame.K_p: "autopilot", pygame.K_q: "reverse", pygame.K_c: "weather", pygame.K_BACKSPACE: "restart",
    pygame.K_F1: "toggle_panel", pygame.K_h: "help", pygame.K_QUESTION: "help", pygame.K_ESCAPE: "quit",
    # Our own keys where CARLA's manual_control.py has none (it uses - and = only with CTRL, for replays).
    pygame.K_MINUS: "slower", pygame.K_KP_MINUS: "slower", pygame.K_EQUALS: "faster", pygame.K_PLUS: "faster",
    pygame.K_KP_PLUS: "faster", pygame.K_F12: "screenshot",
    **{getattr(pygame, f"K_{d}"): f"method:{d}" for d in range(1, 10)},
    **{getattr(pygame, f"K_KP{d}"): f"method:{d}" for d in range(1, 10)},
}
#: Driving keys held down -> :class:`~carla_agent.hud.controls.ManualDriver`'s names (WASD and arrows).
DRIVE_KEYS: Dict[int, str] = {
    pygame.K_w: "up", pygame.K_UP: "up", pygame.K_s: "down", pygame.K_DOWN: "down",
    pygame.K_a: "left", pygame.K_LEFT: "left", pygame.K_d: "right", pygame.K_RIGHT: "right",
    pygame.K_SPACE: "hand_brake",
}


def action_of(event: Any) -> Optional[str]:
    """The action of a KEYDOWN event, or None: :data:`KEYMAP`, plus Shift+C (previous weather)
    and ``?`` (help) on any keyboard layout (``event.unicode``, else Shift+/)."""
    shift = bool(getattr(event, "mod", 0) & pygame.KMOD_SHIFT)
    if getattr(event, "unicode", "") == "?" or (event.key == pygame.K_SLASH and shift):
        return "help"
    if event.key == pygame.K_c and shift:
        return "weather_back"
    return KEYMAP.get(event.key)


def poll_keys(hud: Any) -> bool:
    """Handle the window's pending events; True when a key changed something.

    Driving keys (:data:`DRIVE_KEYS`) update ``hud.held_keys`` (codes) and ``hud.held``
    (their names, for :class:`~carla_agent.hud.controls.ManualDriver`); mapped keys run
    their action. Losing the window's focus releases every held key (no KEYUP comes then).

    Raises:
        StopDrive: the window was closed (or ESC). RestartEpisode: BACKSPACE.
    """
    if hud.window is None:
        return False
    changed = False
    held = set(hud.held_keys)

    def publish() -> None:
        hud.held_keys = frozenset(held)
        hud.held = frozenset(DRIVE_KEYS[k] for k in held)

    for event in pygame.event.get():
        if event.type == pygame.QUIT:
            raise StopDrive("window closed")
        if event.type == getattr(pygame, "WINDOWFOCUSLOST", -1):
            held.clear()
        elif event.type == pygame.KEYUP and event.key in DRIVE_KEYS:
            held.discard(event.key)
        elif event.type == pygame.KEYDOWN:
            action = action_of(event)
            if action is not None:
                publish()
                hud.handle_action(action)
                changed = True
            elif event.key in DRIVE_KEYS:
                held.add(event.key)
                if not hud.state.manual:
                    _drive_hint(hud)
    publish()
    return changed


def _drive_hint(hud: Any) -> None:
    """A driving key while the network (or the expert) drives: say how to take the wheel."""
    hud.notify("M takes the wheel: then WASD / arrows drive")


def pause_loop(hud: Any, record: Any) -> None:
    """Hold ``record``'s frame while paused, reading keys, until Pause (or ``.``) resumes or N
    steps one frame (or ``hud.config.pause_timeout_s`` passes)."""
    started = time.monotonic()
    while hud.state.paused and not hud.state.step_once:
        if hud.window is None:
            log.warning("paused without a window: no key can resume it; resuming")
            hud.state.paused = False
            break
        if poll_keys(hud):
            # A key changed the view: recompute this very frame (blocking is fine while paused).
            amap, schedule = hud.feed.for_record(record, wait=True)
            hud.redraw(record, amap, schedule)
        timeout = hud.config.pause_timeout_s
        if timeout is not None and time.monotonic() - started > timeout:
            log.warning("pause timed out after %.1f s; resuming", timeout)
            hud.state.paused = False
            break
        time.sleep(0.02)


def handle_action(hud: Any, action: str) -> None:
    """Do what a key does to ``hud``: an action of :data:`~carla_agent.hud.controls.ACTIONS` or ``method:<1-9>``.

    Raises:
        StopDrive: ``quit`` (ESC).
        RestartEpisode: ``restart`` (BACKSPACE).
        ValueError: an unknown action.
    """
    if action.startswith("method:"):
        select_method(hud, int(action.split(":")[1]))
        return
    handler = HANDLERS.get(action)
    if handler is None:
        raise ValueError(f"unknown HUD action {action!r}")
    handler(hud)


def select_method(hud: Any, digit: int) -> None:
    """Number key ``digit``: the first method of its family, or the next one when already on it."""
    s = hud.state
    method = hud.menu.select(digit, s.method)
    if method is None:
        hud.notify(f"no method on key {digit}")
        return
    s.method = method
    if not uses_layer(method):
        s.layer = None
    hud.show_selected()


def _target(hud: Any) -> None:
    s = hud.state
    s.target = cycle(TARGETS, s.target)
    if uses_target(s.method):
        hud.show_selected()
    else:
        hud.notify(f"target {s.target} (not used by {s.method})")


def _overlay_style(hud: Any) -> None:
    s = hud.state
    s.style = cycle(OVERLAY_STYLES, s.style)
    hud.notify(f"overlay style: {s.style}")


def _alpha(step: int) -> Callable[[Any], None]:
    def handler(hud: Any) -> None:
        hud.notify(f"overlay opacity {hud.state.nudge_alpha(step):.1f}")

    return handler


def _layer(hud: Any) -> None:
    s = hud.state
    if not uses_layer(s.method) or not hud.conv_layers:
        hud.notify(f"{s.method} takes no conv layer")
        return
    s.layer = cycle((None,) + hud.conv_layers, s.layer)
    hud.show_selected()


def _layout(hud: Any) -> None:
    s = hud.state
    s.layout = cycle(LAYOUTS, s.layout)
    hud.layout_auto = False
    hud.notify(f"layout: {s.layout}")


def _pause(hud: Any) -> None:
    s = hud.state
    s.paused = not s.paused
    s.step_once = False
    hud.notify("paused: N steps one frame, Pause or . resumes" if s.paused else "resumed")


def _step(hud: Any) -> None:
    if hud.state.paused:
        hud.state.step_once = True
    else:
        hud.notify("N steps one frame while paused (Pause or . pauses)")


def toggle_record(hud: Any) -> None:
    """R: start or stop recording through ``hud.on_record_toggle`` (a failing recorder is reported)."""
    s = hud.state
    s.recording = not s.recording
    if hud.on_record_toggle is not None:
        try:
            hud.on_record_toggle(s.recording)
        except Exception as exc:  # the recorder is someone else's: report, keep driving
            log.exception("record toggle failed")
            s.recording = not s.recording
            hud.notify(f"recording failed: {exc}")
            return
    elif s.recording:
        log.warning("R pressed but no recorder is attached (make_hud(on_record_toggle=...))")
    lock = " (each frame waits for its map)" if s.recording and hud.config.lockstep_when_recording else ""
    hud.notify(f"recording{lock}" if s.recording else "recording stopped")


def toggle_manual(hud: Any) -> None:
    """M: a person takes the wheel (W A S D / arrows, Q, Space), or gives it back to the network.

    Ticks a person drives count no intervention, are never put back on the lane, and are
    left out of autonomy (see :mod:`carla_agent.drive.runner`).
    """
    s = hud.state
    s.manual = not s.manual
    s.autopilot = False
    hud.manual.reset()
    if s.manual:
        hud.notify("you drive: WASD / arrows (H: all keys)")
    else:
        hud.notify("the network drives again")


def toggle_autopilot(hud: Any) -> None:
    """P (CARLA's autopilot): the expert takes the wheel, or gives it back to the network.
    Counted like a manual takeover: not the network's time."""
    s = hud.state
    s.autopilot = not s.autopilot
    s.manual = False
    hud.manual.reset()
    hud.expert.reset()
    hud.notify("autopilot: the expert drives (P: give back)" if s.autopilot else "the network drives again")


def _reverse(hud: Any) -> None:
    if not hud.state.manual:
        hud.notify("Q toggles reverse while you drive (M)")
        return
    hud.notify("reverse" if hud.manual.toggle_reverse() else "forward")


def cycle_weather(hud: Any, step: int = 1) -> None:
    """C (Shift+C: ``step`` -1): the next (previous) of ``hud.weather_presets``, from the next frame
    (when the backend can change it)."""
    sim = hud.context.sim if hud.context is not None else None
    if sim is None or not hasattr(sim, "set_weather"):
        hud.notify("this backend cannot change the weather")
        return
    from carla_agent.sim.scenario import WeatherSpec

    record = hud.current_record
    current = hud.weather_asked or (record.obs.weather if record is not None else None)
    name = cycle(hud.weather_presets, current, step)
    try:
        sim.set_weather(WeatherSpec(preset=name))
    except Exception as exc:  # a backend refusing a preset must not stop the drive
        log.exception("set_weather(%s) failed", name)
        hud.notify(f"weather {name} failed: {exc}")
        return
    hud.weather_asked = name
    hud.notify(f"weather: {name} (from the next frame)")


def _restart(hud: Any) -> None:
    hud.restart_requested = True
    hud.notify("restarting the scenario")
    raise RestartEpisode("BACKSPACE")


def _toggle_panel(hud: Any) -> None:
    hud.state.panel_visible = not hud.state.panel_visible


def _help(hud: Any) -> None:
    hud.state.help_visible = not hud.state.help_visible


def _quit(hud: Any) -> None:
    raise StopDrive("ESC")


def _speed(change: Callable[[float], float]) -> Callable[[Any], None]:
    def handler(hud: Any) -> None:
        set_speed(hud, change(hud.pacer.speed))

    return handler


#: Action name -> what it does to the HUD (``method:<digit>`` goes to :func:`select_method`).
HANDLERS: Dict[str, Callable[[Any], None]] = {
    "target": _target, "overlay_style": _overlay_style, "alpha_down": _alpha(-1), "alpha_up": _alpha(1),
    "layer": _layer, "layout": _layout, "pause": _pause, "step": _step, "record": toggle_record,
    "manual": toggle_manual, "autopilot": toggle_autopilot, "reverse": _reverse, "weather": cycle_weather,
    "weather_back": lambda hud: cycle_weather(hud, -1), "restart": _restart, "toggle_panel": _toggle_panel,
    "help": _help, "quit": _quit, "slower": _speed(halve), "faster": _speed(double), "screenshot": take_screenshot,
}
