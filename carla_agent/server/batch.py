"""``apply_batch`` / ``apply_batch_sync``: CARLA's batch commands, each answered for itself.

A command is ``[[variant_index, fields]]`` (``carla::rpc::Command``'s variant, 0.9.16 order in
:data:`COMMANDS`); its answer a ``CommandResponse``: ``[[1, actor_id]]`` or ``[[0, [message]]]``
with the message the single call would give (CARLA's server runs each command through the same
function as the call). ``SpawnActor`` runs its ``do_after`` commands (``.then(...)``, with
``FutureActor`` = 0 replaced by the new actor's id) and answers the new id; their own answers are
dropped, as CARLA drops them. ``do_tick`` ticks after the commands, as ``tick_cue``.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict

from carla_agent.server import actors, checks, vehicle_calls, walkers
from carla_agent.server.rpc import Raw, RpcError

log = logging.getLogger(__name__)

#: ``carla::rpc::Command``'s alternatives in 0.9.16 (gdb on the wheel's libcarla), by index.
COMMANDS = ("SpawnActor", "DestroyActor", "ApplyVehicleControl", "ApplyVehicleAckermannControl",
            "ApplyWalkerControl", "ApplyVehiclePhysicsControl", "ApplyTransform", "ApplyWalkerState",
            "ApplyTargetVelocity", "ApplyTargetAngularVelocity", "ApplyImpulse", "ApplyForce",
            "ApplyAngularImpulse", "ApplyTorque", "SetSimulatePhysics", "SetEnableGravity", "SetAutopilot",
            "ShowDebugTelemetry", "SetVehicleLightState", "ApplyLocation", "ConsoleCommand",
            "SetTrafficLightState")
SPAWN = 0


def _spawn(world, f) -> int:
    """``[description, transform, parent: [false] | [true, id], attachment_type, socket_name, do_after]``."""
    parent = f[2] if len(f) > 2 else [False]
    if isinstance(parent, (list, tuple)) and parent and parent[0]:
        actor = actors.spawn_actor_with_parent(world, f[0], f[1], parent[1])
    else:
        actor = actors.spawn_actor(world, f[0], f[1])
    new_id = int(actor[0])
    for cmd in (f[5] if len(f) > 5 and isinstance(f[5], (list, tuple)) else ()):
        try:
            index, fields = cmd[0][0], list(cmd[0][1])
            if index != SPAWN:
                fields[0] = new_id  # FutureActor
            run(world, index, fields)
        except Exception as e:  # noqa: BLE001 - CARLA drops the do_after answers
            log.info("do_after of actor %d: %s", new_id, e)
    return new_id


def _destroy(world, f) -> int:
    if not actors.destroy_actor(world, f[0]):
        raise RpcError("unable to destroy actor: not found")
    return f[0]


def _call(function: Callable, nargs: int) -> Callable:
    """A command whose fields are ``[actor_id, args...]``, answered by the call ``function``."""
    def run_it(world, f) -> int:
        function(world, *f[:nargs])
        return f[0]
    return run_it


HANDLERS: Dict[int, Callable] = {
    0: _spawn,
    1: _destroy,
    2: _call(vehicle_calls.apply_control_to_vehicle, 2),
    4: _call(walkers.apply_control_to_walker, 2),
    7: _call(walkers.apply_walker_state, 3),
    6: _call(actors.set_actor_transform, 2),
    8: _call(vehicle_calls.set_actor_target_velocity, 2),
    14: _call(vehicle_calls.set_actor_simulate_physics, 2),
    16: _call(vehicle_calls.set_actor_autopilot, 2),
    18: _call(vehicle_calls.set_vehicle_light_state, 2),
}


def run(world, index, fields) -> int:
    """Run one command; its actor id, or an :class:`RpcError` with the command's message."""
    handler = HANDLERS.get(index) if isinstance(index, int) and not isinstance(index, bool) else None
    if handler is None:
        name = COMMANDS[index] if isinstance(index, int) and 0 <= index < len(COMMANDS) else "unknown"
        raise RpcError(f"the embedded server does not support apply_batch command {name} (#{index!r:.20}); "
                       f"it runs {', '.join(COMMANDS[i] for i in sorted(HANDLERS))}")
    if not isinstance(fields, (list, tuple)) or not fields:
        raise RpcError(f"{COMMANDS[index]}: malformed fields {fields!r:.60}")
    fields = list(fields)
    if index != SPAWN:
        fields[0] = actors.actor_id(fields[0])
    return int(handler(world, fields))


def apply_batch(world, commands, do_tick=False, *a) -> Raw:
    """Each answer a ``Response<ActorId>``; a bare vector (``apply_batch`` is bound without ``R<>``)."""
    if not isinstance(commands, (list, tuple)):
        raise RpcError(f"apply_batch takes a list of commands, not {commands!r:.60}")
    do_tick = checks.flag(do_tick, "do_tick_cue")
    out = []
    for cmd in commands:
        try:
            out.append([[1, run(world, cmd[0][0], cmd[0][1])]])
        except RpcError as e:
            out.append([[0, [str(e)]]])
        except Exception as e:  # noqa: BLE001 - a malformed command answers for itself only
            out.append([[0, [f"malformed command {cmd!r:.60}: {type(e).__name__}: {e}"]]])
    if do_tick:
        try:
            world.tick_cue()
        except RpcError as e:  # the commands did apply; the answer has no room for the tick's error
            log.warning("apply_batch's tick: %s", e)
    return Raw(out)
