"""Fuzzing the served RPCs' argument decoding: random msgpack arguments to every CARLA call.

In process, no socket per example: each message goes through the RPC layer's own handler
(``RpcServer._handle``, what a connection's thread runs on each message) of a started
:class:`~carla_agent.server.Server`, after a msgpack round trip (what the wire would carry).
Properties:

* nothing escapes but the ``ValueError`` of a malformed envelope (which closes only that
  connection); every reply is a well-formed msgpack-rpc response;
* a bad argument is refused by a check (``RpcError``: CARLA's error result naming it), never by
  an accident of the handler (a ``TypeError`` deep inside);
* afterwards the world still ticks, its asynchronous ticker thread is alive, and a client
  can turn synchronous mode on, tick 5 times and turn it off.
"""

import logging
import math

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from carla_agent.server import Server
from carla_agent.server.rpc import REQUEST, RESPONSE, pack


@pytest.fixture(scope="module")
def server():
    srv = Server("straight_clear", port=0).start()
    try:
        yield srv
    finally:
        srv.close()


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=12),
                    st.sampled_from([0, -1, 1e300, math.nan, math.inf, "sensor.camera.rgb", "vehicle.lincoln.mkz_2020",
                                     "image_size_x", "fov", 2 ** 32, 180.0, 0.0]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=20)


EGO = "{ego}"  # replaced by the id of an ego the poisoning test spawns first
NAN, INF = math.nan, math.inf


def _camera(**attrs):
    return [1, "sensor.camera.rgb", [[k, 2, str(v)] for k, v in attrs.items()]]


def _settings(fixed_delta):
    return [[True, False, [True, fixed_delta], False, 0.01, 10, 0.0, False, 2000.0, 2000.0, False]]


MOUNT = [[0.8, 0.0, 1.5], [0.0, 0.0, 0.0]]
#: The reliability audit's poisoning inputs as they reach the server (the wheel's own versions run in
#: tests/test_serve_hardening.py): (name, method, arguments). Each must be refused with an error result.
POISON = [
    ("camera fov 180", "spawn_actor_with_parent", [_camera(fov=180), MOUNT, EGO]),
    ("camera fov 0", "spawn_actor_with_parent", [_camera(fov=0), MOUNT, EGO]),
    ("camera fov NaN", "spawn_actor_with_parent", [_camera(fov="nan"), MOUNT, EGO]),
    ("camera image_size_x 0", "spawn_actor_with_parent", [_camera(image_size_x=0), MOUNT, EGO]),
    ("camera 16000x16000", "spawn_actor_with_parent", [_camera(image_size_x=16000, image_size_y=16000), MOUNT, EGO]),
    ("camera mount NaN", "spawn_actor_with_parent", [_camera(), [[NAN, 0.0, 1.5], [0.0, 0.0, 0.0]], EGO]),
    ("transform x NaN", "set_actor_transform", [EGO, [[NAN, 0.0, 0.0], [0.0, 0.0, 0.0]]]),
    ("velocity inf", "set_actor_target_velocity", [EGO, [INF, 0.0, 0.0]]),
    ("throttle NaN", "apply_control_to_vehicle", [EGO, [NAN, 0.0, 0.0, False, False, False, 0]]),
    ("weather NaN", "set_weather_parameters", [[NAN] * 14]),
    ("fixed_delta_seconds NaN", "set_episode_settings", _settings(NAN)),
    ("fixed_delta_seconds 0", "set_episode_settings", _settings(0.0)),
    ("fixed_delta_seconds inf", "set_episode_settings", _settings(INF)),
    ("fixed_delta_seconds -0.05", "set_episode_settings", _settings(-0.05)),
    ("fixed_delta_seconds text", "set_episode_settings", _settings("0.05")),
    ("spawn a description that is not one", "spawn_actor", ["x", 5]),
    ("spawn at x 1e300", "spawn_actor", [[1, "vehicle.audi.a2", []], [[1e300, 0, 0], [0, 0, 0]]]),
    ("sensor token -1", "get_sensor_token", [-1]),
    ("actor id 1.5", "get_actors_by_id", [[1.5]]),
    ("batch of junk", "apply_batch", ["junk", True]),
    ("weather of 3 values", "set_weather_parameters", [[1.0] * 3]),
    ("traffic manager port 70000", "add_traffic_manager_running", [["127.0.0.1", 70000]]),
    ("control of nulls", "apply_control_to_vehicle", [EGO, [None] * 7]),
    ("no arguments", "spawn_actor", []),
    ("unknown call", "no_such_call", []),
]


def call(server, method, args, cid=3):
    """``(outcome, text)`` of one call through the RPC handler: ``refused`` (an error result from a
    check), ``accepted`` (a value), ``failed`` (an error result from an exception inside a handler:
    the check is missing) or ``closed`` (a malformed envelope closes the connection)."""
    _FAILED.clear()
    handler = _Failures()
    rpc_log = logging.getLogger("carla_agent.server.rpc")
    rpc_log.addHandler(handler)
    try:
        msg = msgpack.unpackb(pack([REQUEST, 7, method, [[False], *args]]), raw=False, strict_map_key=False)
        reply = server._rpc._handle(cid, msg)
    except ValueError as exc:
        return "closed", str(exc)
    finally:
        rpc_log.removeHandler(handler)
    result = msgpack.unpackb(reply, raw=False, strict_map_key=False)[3]
    if _FAILED:
        return "failed", _FAILED[-1]
    # An error is [[0, [message]]]; a void result is [[False]] (and False == 0 in Python).
    if isinstance(result, list) and result and isinstance(result[0], list) and len(result[0]) == 2 \
            and result[0][0] == 0 and result[0][0] is not False:
        return "refused", result[0][1][0]
    return "accepted", repr(result)[:80]


def spawn_ego(server, cid=3) -> int:
    outcome, text = call(server, "spawn_actor", [[1, "vehicle.lincoln.mkz_2020", []], [[0, 0, 0.5], [0, 0, 0]]],
                         cid)
    assert outcome == "accepted", text
    return server.world.ego_id


def _methods():
    srv = Server("straight_clear", port=0)
    try:
        return sorted(srv.world._handlers) + ["no_such_call"]
    finally:
        srv.close()


METHODS = _methods()
#: Calls of the last example that failed inside their handler instead of being refused by a check.
_FAILED = []


class _Failures(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("call ") and " failed: " in record.getMessage():
            _FAILED.append(record.getMessage())


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(method=st.sampled_from(METHODS), args=st.lists(values, max_size=4), envelope=st.integers(0, 19))
def test_random_arguments_get_an_answer_or_a_clean_refusal(server, method, args, envelope):
    if envelope == 0:
        msg = [REQUEST, 7, method]  # malformed: no params
    elif envelope == 1:
        msg = [9, method, args]    # unknown kind
    else:
        msg = [REQUEST, 7, method, [[False], *args]]
    msg = msgpack.unpackb(pack(msg), raw=False, strict_map_key=False)  # what the wire would carry
    _FAILED.clear()
    handler = _Failures()
    rpc_log = logging.getLogger("carla_agent.server.rpc")
    rpc_log.addHandler(handler)
    try:
        reply = server._rpc._handle(1, msg)
    except ValueError:
        assert envelope < 2, f"{method}{args!r}: a well-formed call must not close its connection"
        return
    finally:
        rpc_log.removeHandler(handler)
    assert envelope >= 2
    kind, msgid, err, result = msgpack.unpackb(reply, raw=False, strict_map_key=False)
    assert (kind, msgid, err) == (RESPONSE, 7, None)
    assert not _FAILED, f"{method}{args!r:.200}: not refused by a check: {_FAILED[-1]}"


@pytest.mark.parametrize("name,method,args", POISON, ids=[p[0] for p in POISON])
def test_the_audits_poisoning_inputs_are_refused_by_a_check(server, name, method, args):
    ego = spawn_ego(server)
    try:
        args = [ego if a == EGO else a for a in args]
        outcome, text = call(server, method, args)
        assert outcome == "refused", f"{name}: {outcome}: {text}"
        assert "\n" not in text and len(text) < 600
    finally:
        call(server, "destroy_actor", [ego])
    assert call(server, "tick_cue", [])[0] == "accepted"


def test_the_world_survives_the_fuzz(server):
    world = server.world
    assert world._ticker is not None and world._ticker.is_alive()

    def call(method, *args):
        kind, _, _, result = msgpack.unpackb(server._rpc._handle(2, [REQUEST, 1, method, [[False], *args]]),
                                             raw=False, strict_map_key=False)
        return result[0]  # carla::rpc::Response<T>: [1, value] or [0, [message]]

    settings_ = call("get_episode_settings")[1]
    settings_[0], settings_[2] = True, [True, 0.05]  # synchronous, fixed_delta_seconds 0.05
    assert call("set_episode_settings", settings_)[0] == 1
    start = world.frame
    for _ in range(5):
        assert call("tick_cue")[0] == 1, call("tick_cue")
    assert world.frame == start + 5
    settings_[0], settings_[2] = False, [False]
    assert call("set_episode_settings", settings_)[0] == 1
    assert world._ticker.is_alive()
