"""`serve`: a failure inside a tick is reported and the world goes on (issue 18).

No client input is known to break a step any more (tests/test_serve_hardening.py refuses them at the
door), so the faults are injected: an in-process server, driven by raw msgpack-rpc (no carla wheel
in this process), whose simulation step or camera fails on purpose.
"""

import socket
import struct
import time

import msgpack
import pytest

from carla_agent.server import Server, publish


class Conn:
    """One msgpack-rpc connection (one client, as one ``carla.Client``)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.msgid = 0

    def call(self, method, *args):
        self.msgid += 1
        self.sock.sendall(msgpack.packb([0, self.msgid, method, [[False], *args]], use_bin_type=True))
        while True:
            for msg in self.unpacker:
                assert msg[1] == self.msgid
                return msg[3]
            data = self.sock.recv(1 << 16)
            assert data, "the server closed the connection"
            self.unpacker.feed(data)

    def value(self, method, *args):
        result = self.call(method, *args)
        assert result[0][0] in (1, False), result
        return result[0][1] if result[0][0] == 1 else None

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def served():
    server = Server("gentle_curves", port=0).start()
    conn = Conn(server.port)
    try:
        yield server, conn
    finally:
        conn.close()
        server.close()


def _settings(sync: bool, dt=0.05) -> list:
    return [sync, False, [True, dt] if sync else [False], False, 0.01, 10, 0.0, False, 2000.0, 2000.0, False]


def _fail(n: int, original, exc=RuntimeError("injected")):
    """A stand-in for ``original`` that raises ``exc`` the first ``n`` times."""
    left = [n]

    def wrapper(*a, **k):
        if left[0] > 0:
            left[0] -= 1
            raise exc
        return original(*a, **k)

    return wrapper


def test_a_failed_step_is_reported_to_the_ticking_client_and_the_next_tick_works(served):
    server, conn = served
    conn.value("set_episode_settings", _settings(True))
    frame = conn.value("tick_cue")
    server.world.sim.step = _fail(1, server.world.sim.step)
    result = conn.call("tick_cue")
    assert result[0][0] == 0
    assert "the simulation step failed (RuntimeError: injected); the episode was restarted" in result[0][1][0]
    assert conn.value("tick_cue") == frame + 1  # the failed tick did not count; the world goes on
    assert conn.value("tick_cue") == frame + 2
    conn.value("set_episode_settings", _settings(False))


def test_the_asynchronous_ticker_survives_failing_steps(served):
    server, conn = served
    world = server.world
    world.sim.step = _fail(5, world.sim.step, ValueError("cannot convert float NaN to integer"))
    deadline = time.time() + 10.0
    while world.frame < 10 and time.time() < deadline:
        time.sleep(0.05)
    assert world._ticker.is_alive()
    assert world.frame >= 10, "the asynchronous ticker stopped"
    assert conn.value("get_episode_settings")[0] is False  # and the calls are answered


def _spawn_ego_and_camera(conn):
    name, points = conn.value("get_map_info")
    ego = conn.value("spawn_actor", [1, "vehicle.lincoln.mkz_2020", []], points[0])[0]
    attrs = [["image_size_x", 2, "64"], ["image_size_y", 2, "48"]]
    cam = conn.value("spawn_actor_with_parent", [5, "sensor.camera.rgb", attrs],
                     [[0.8, 0.0, 1.5], [0.0, 0.0, 0.0]], ego)[0]
    return ego, cam


def _subscribe(port: int, stream_id: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10.0)
    s.sendall(struct.pack("<I", stream_id))
    return s


def _read_message(s: socket.socket) -> bytes:
    (size,) = struct.unpack("<I", s.recv(4, socket.MSG_WAITALL))
    return s.recv(size, socket.MSG_WAITALL)


def test_a_failed_camera_is_stopped_and_reported_and_the_rest_goes_on(served, monkeypatch):
    server, conn = served
    conn.value("set_episode_settings", _settings(True))
    ego, cam = _spawn_ego_and_camera(conn)
    cam_sub, episode_sub = _subscribe(server.stream_port, cam), _subscribe(server.stream_port, 1)
    try:
        deadline = time.time() + 10.0
        while not all(map(server.world.streams.has_subscribers, (cam, 1))) and time.time() < deadline:
            time.sleep(0.01)
        frame = conn.value("tick_cue")
        assert len(_read_message(cam_sub)) > 64 * 48 * 4  # a frame came
        monkeypatch.setattr(publish, "_publish_camera", _fail(1, publish._publish_camera))
        result = conn.call("tick_cue")
        assert result[0][0] == 0
        assert f"sensor.camera.rgb {cam} failed and was stopped (RuntimeError: injected)" in result[0][1][0]
        assert conn.value("tick_cue") == frame + 2  # the frame counted (the step was fine); the world goes on
        assert server.world.actors[cam].failed == "RuntimeError: injected"
        for _ in range(3):  # the episode state of every tick went out
            assert len(_read_message(episode_sub)) > 36
    finally:
        cam_sub.close()
        episode_sub.close()
        conn.value("set_episode_settings", _settings(False))


def test_wrong_types_fail_before_anything_changes(served):
    """A call refused by a check leaves the world as it was (nothing half applied)."""
    server, conn = served
    conn.value("set_episode_settings", _settings(True))  # nothing ticks unless asked
    ego, cam = _spawn_ego_and_camera(conn)
    conn.value("tick_cue")
    world = server.world
    state, control, owner = world.sim.state, list(world.raw_control), world.sync_owner
    assert conn.call("set_actor_transform", ego, [[float("nan"), 0.0, 0.0], [0.0, 0.0, 0.0]])[0][0] == 0
    assert conn.call("apply_control_to_vehicle", ego, [0.5, 0.0, 0.0, False, False, False, "2"])[0][0] == 0
    assert conn.call("set_episode_settings", [False, False, [True, float("nan")]])[0][0] == 0
    assert conn.call("spawn_actor_with_parent", [5, "sensor.camera.rgb", [["fov", 3, "180"]]],
                     [[0.8, 0.0, 1.5], [0.0, 0.0, 0.0]], ego)[0][0] == 0
    assert world.sim.state == state and world.raw_control == control
    assert world.sync and world.sync_owner == owner and world.fixed_delta == 0.05
    assert sorted(world.actors) == [ego, cam] and world.next_id == cam  # no id spent on the refused camera
    conn.value("set_episode_settings", _settings(False))
