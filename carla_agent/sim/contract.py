"""A checker of the simulator contract, shipped with the package.

Like Gymnasium's ``check_env``: run it against any backend (the tests run it
against every registered one) and it raises :class:`ContractError` naming the
first broken promise::

    from carla_agent.sim.contract import check_simulator
    check_simulator(lambda: make_simulator("embedded"), load_scenario("straight_clear"))
"""

from __future__ import annotations

import math
from typing import Callable, List

import numpy as np

from carla_agent.control import VehicleControl
from carla_agent.sim.observation import (COLLISION_KINDS, CollisionEvent, InfractionEvent, LaneInvasionEvent,
                                          Observation, SemanticClass)
from carla_agent.sim.simulator import Simulator


class ContractError(AssertionError):
    """A backend broke the simulator contract."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ContractError(message)


def check_observation(obs: Observation, scenario, previous: Observation | None = None) -> None:
    """Check one observation's types, shapes and ranges."""
    _require(isinstance(obs, Observation), f"expected an Observation, got {type(obs).__name__}")
    cam = scenario.camera
    img = obs.image
    _require(isinstance(img, np.ndarray), "image must be a numpy array")
    _require(img.dtype == np.uint8, f"image dtype must be uint8, got {img.dtype}")
    _require(img.shape == (cam.image_size_y, cam.image_size_x, 3),
             f"image shape must be (H, W, 3) = {(cam.image_size_y, cam.image_size_x, 3)}, got {img.shape}")
    _require(isinstance(obs.frame, (int, np.integer)), "frame must be an int")
    _require(math.isfinite(obs.sim_time_s) and obs.sim_time_s >= 0, "sim_time_s must be finite and >= 0")
    _require(abs(obs.dt_s - scenario.dt_s) < 1e-9, f"dt_s {obs.dt_s} differs from the scenario's {scenario.dt_s}")
    _require(math.isfinite(obs.speed_mps) and obs.speed_mps >= 0, f"speed_mps must be >= 0, got {obs.speed_mps}")
    for name in ("x_m", "y_m", "z_m", "yaw_deg"):
        _require(math.isfinite(getattr(obs.pose, name)), f"pose.{name} must be finite")
    t = obs.truth
    for name in ("lateral_offset_m", "heading_error_rad", "route_s_m", "route_length_m", "lane_width_m"):
        _require(math.isfinite(getattr(t, name)), f"truth.{name} must be finite")
    _require(-math.pi - 1e-6 <= t.heading_error_rad <= math.pi + 1e-6, "truth.heading_error_rad must be in [-pi, pi]")
    _require(t.route_ahead.ndim == 2 and t.route_ahead.shape[1] == 2 and len(t.route_ahead) > 0,
             f"truth.route_ahead must be (N, 2) with N > 0, got {t.route_ahead.shape}")
    _require(bool(np.all(np.diff(np.hypot(t.route_ahead[:, 0], t.route_ahead[:, 1])) >= -1e-3)),
             "truth.route_ahead must be ordered by distance")
    if t.expert_steer is not None:
        _require(-1.0 <= t.expert_steer <= 1.0, "truth.expert_steer must be in [-1, 1]")
    if t.semantic is not None:
        _require(t.semantic.shape == img.shape[:2], f"semantic shape {t.semantic.shape} must equal the image's {img.shape[:2]}")
        _require(t.semantic.dtype == np.uint8, "semantic dtype must be uint8")
        _require(int(t.semantic.max()) <= max(SemanticClass), "semantic holds values outside SemanticClass")
    for ev in obs.collisions:
        _require(isinstance(ev, CollisionEvent), "collisions must hold CollisionEvent")
        _require(ev.other_kind in COLLISION_KINDS, f"collision kind {ev.other_kind!r} unknown")
    for ev in obs.infractions:
        _require(isinstance(ev, InfractionEvent) and ev.kind in ("red_light", "stop_sign", "route_deviation"),
                 f"infractions must hold InfractionEvent of kind red_light, stop_sign or route_deviation, got {ev!r}")
    for ev in obs.lane_invasions:
        _require(isinstance(ev, LaneInvasionEvent), "lane_invasions must hold LaneInvasionEvent")
    if previous is not None:
        _require(obs.frame == previous.frame + 1, f"frame must advance by 1 per step: {previous.frame} -> {obs.frame}")
        _require(abs(obs.sim_time_s - previous.sim_time_s - scenario.dt_s) < 1e-6,
                 "sim_time_s must advance by dt_s per step")


def check_simulator(factory: Callable[[], Simulator], scenario, steps: int = 20,
                    check_determinism: bool = True) -> List[str]:
    """Run the contract checks against ``factory()``; returns the names of the checks passed."""
    passed: List[str] = []
    sim = factory()
    _require(isinstance(sim, Simulator), "a backend must subclass carla_agent.sim.simulator.Simulator")
    try:
        try:
            sim.step(VehicleControl())
            raise ContractError("step() before reset() must raise")
        except ContractError:
            raise
        except Exception:
            passed.append("step before reset raises")
        obs = sim.reset(scenario, seed=3)
        check_observation(obs, scenario)
        first = obs
        passed.append("reset returns a valid observation")
        frames = [obs.image.copy()]
        controls = [VehicleControl(throttle=0.6, steer=0.05 * math.sin(i / 3.0)) for i in range(steps)]
        for c in controls:
            nxt = sim.step(c)
            check_observation(nxt, scenario, obs)
            obs = nxt
            frames.append(obs.image.copy())
        passed.append("step advances frame and time, observations valid")
        _require(obs.speed_mps > 0.1 or steps < 5, "throttle 0.6 did not move the car")
        far = sim.step(VehicleControl(steer=2.0, throttle=-1.0))  # out-of-range values are clamped
        check_observation(far, scenario, obs)
        passed.append("out-of-range controls are clamped")
        for _ in range(10):
            obs = sim.step(VehicleControl(steer=1.0, throttle=0.5))
        before = abs(obs.truth.lateral_offset_m)
        sim.recover()
        obs = sim.step(VehicleControl())
        _require(abs(obs.truth.lateral_offset_m) < max(0.25, 0.5 * before),
                 f"recover() must put the car on the lane centre; offset {obs.truth.lateral_offset_m:.2f} m")
        passed.append("recover puts the ego on the lane centre")
        if check_determinism:
            again = sim.reset(scenario, seed=3)
            _require(again.frame == first.frame, "reset must restart the frame count")
            same = [again.image]
            for c in controls:
                same.append(sim.step(c).image)
            _require(all(np.array_equal(a, b) for a, b in zip(frames, same)),
                     "the same scenario, seed and controls must give identical frames")
            passed.append("deterministic")
    finally:
        sim.close()
        sim.close()
    passed.append("close is idempotent")
    return passed
