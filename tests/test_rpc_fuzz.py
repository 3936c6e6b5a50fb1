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
