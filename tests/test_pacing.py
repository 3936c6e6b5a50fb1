"""The pacer's arithmetic (carla_agent.drive.pacing), on made-up clocks: no sleeping, no pygame."""

from __future__ import annotations

import math

import pytest

from carla_agent.drive.pacing import (MAX_FINITE_SPEED, MIN_SPEED, Pacer, PacingError, double, format_speed, halve,
                                      parse_speed)
from carla_agent.errors import CarlaAgentError

DT = 0.05  # [s] the simulators' step


def frames(pacer: Pacer, start_wall_s: float, n: int, cost_s: float, speed_dt=DT):
    """Drive ``n`` frames where computing each takes ``cost_s``; sleep what the pacer says.
    Returns the wall time each frame was shown at."""
    now, shown = start_wall_s, []
    for i in range(n):
        now += cost_s
        now += pacer.delay_s(i * speed_dt, now)
        shown.append(now)
    return shown


def test_real_time_shows_each_frame_one_step_after_the_last():
    pacer = Pacer(1.0)
    shown = frames(pacer, 100.0, 201, cost_s=0.01)
    # Frame 0 anchors the schedule (at 100.01); frame i is shown at 100.01 + i * 0.05.
    assert shown[0] == pytest.approx(100.01)
    assert shown[-1] - shown[0] == pytest.approx(200 * DT)
    gaps = [b - a for a, b in zip(shown, shown[1:])]
    assert min(gaps) == pytest.approx(DT) and max(gaps) == pytest.approx(DT)
    assert pacer.resyncs == 0


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_the_speed_factor_scales_wall_time(speed):
    pacer = Pacer(speed)
    shown = frames(pacer, 0.0, 101, cost_s=0.001)
    assert shown[-1] - shown[0] == pytest.approx(100 * DT / speed)


def test_max_never_waits():
    pacer = Pacer(math.inf)
    assert pacer.unlimited
    assert all(pacer.delay_s(i * DT, 0.0) == 0.0 for i in range(50))
    assert pacer.due_s(1.0) is None


def test_a_slow_frame_within_the_lag_is_caught_up_and_a_long_stall_starts_again():
    pacer = Pacer(1.0, max_lag_s=0.5)
    assert pacer.delay_s(0.0, 10.0) == 0.0  # anchors: 0 s sim at 10 s wall
    assert pacer.delay_s(DT, 10.0) == pytest.approx(DT)
    # Frame 2 is due at 10.10; it is ready 0.3 s late: no wait, and the schedule is kept ...
    assert pacer.delay_s(2 * DT, 10.40) == 0.0
    assert pacer.due_s(3 * DT) == pytest.approx(10.15)
    assert pacer.resyncs == 0
    # ... so the next frames run without waiting until they are back on time.
    assert pacer.delay_s(3 * DT, 10.41) == 0.0
    # Frame 4 is due at 10.20 and comes at 11.0 (0.8 s late > 0.5): a new schedule from there.
    assert pacer.delay_s(4 * DT, 11.0) == 0.0
    assert pacer.resyncs == 1
    assert pacer.delay_s(5 * DT, 11.0) == pytest.approx(DT)


def test_changing_the_speed_starts_from_the_last_frame():
    pacer = Pacer(1.0)
    pacer.delay_s(0.0, 0.0)
    pacer.delay_s(1.0, 1.0)  # on time at sim 1.0
    pacer.set_speed(0.5, now_s=1.02)
    # From (1.02 s wall, 1.0 s sim) at half speed, sim 1.1 is due 0.2 s later.
    assert pacer.due_s(1.1) == pytest.approx(1.22)
    assert pacer.delay_s(1.1, 1.10) == pytest.approx(0.12)
    pacer.set_speed(math.inf, now_s=1.3)
    assert pacer.delay_s(1.15, 1.3) == 0.0
    pacer.set_speed(2.0, now_s=5.0)  # back from max: the schedule restarts at the last frame
    assert pacer.delay_s(1.25, 5.0) == pytest.approx(0.05)


def test_a_restart_or_reset_anchors_again():
    pacer = Pacer(1.0)
    pacer.delay_s(0.0, 0.0)
    pacer.delay_s(5.0, 5.0)
    assert pacer.delay_s(0.0, 7.0) == 0.0  # sim time went back: a new episode
    assert pacer.delay_s(DT, 7.0) == pytest.approx(DT)
    pacer.reset()  # after a pause
    assert pacer.delay_s(2 * DT, 100.0) == 0.0
    assert pacer.delay_s(3 * DT, 100.0) == pytest.approx(DT)
    assert pacer.resyncs == 0


def test_the_delay_left_after_a_partial_sleep():
    pacer = Pacer(0.25)
    pacer.delay_s(0.0, 0.0)
    assert pacer.delay_s(DT, 0.0) == pytest.approx(0.2)
    assert pacer.delay_s(DT, 0.15) == pytest.approx(0.05)  # asked again after sleeping 0.15 s
    assert pacer.delay_s(DT, 0.25) == 0.0


def test_halve_and_double_walk_the_ladder_to_max_and_back():
    speed, seen = 1.0, []
    while not math.isinf(speed):
        speed = double(speed)
        seen.append(speed)
    assert seen == [2.0, 4.0, 8.0, 16.0, math.inf]
    assert halve(math.inf) == MAX_FINITE_SPEED
    speed = 1.0
    for _ in range(10):
        speed = halve(speed)
    assert speed == MIN_SPEED
    assert double(3.0) == 6.0 and halve(3.0) == 1.5  # a --speed off the ladder keeps its own steps
    assert double(12.0) == math.inf


@pytest.mark.parametrize("text, expected", [("1", 1.0), ("0.5", 0.5), ("4", 4.0), ("max", math.inf),
                                            ("MAX", math.inf), (" 2.5 ", 2.5)])
def test_parse_speed(text, expected):
    assert parse_speed(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "fast", "", "nan", "inf5"])
def test_parse_speed_rejects_with_the_fix(text):
    with pytest.raises(PacingError) as err:
        parse_speed(text)
    assert isinstance(err.value, CarlaAgentError)
    assert "'max'" in str(err.value) and "> 0" in str(err.value)


def test_format_speed_and_bad_factors():
    assert [format_speed(s) for s in (1.0, 0.5, 0.0625, 3.0, math.inf)] == ["1x", "0.5x", "0.0625x", "3x", "max"]
    with pytest.raises(PacingError):
        Pacer(0.0)
    with pytest.raises(PacingError):
        Pacer(1.0).set_speed(-2.0, 0.0)
