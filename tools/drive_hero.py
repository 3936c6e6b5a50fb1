"""Drive ScenarioRunner's ego (``role_name`` hero) with CARLA's BasicAgent from a second client.

    python tools/drive_hero.py --port 2000 --agents DIR [--spawn X Y YAW] [--speed-kmh 30] [--ahead-m 300]

ScenarioRunner's own ``--agent`` works with routes only; its single scenarios (FollowLeadingVehicle,
ControlLoss...) wait for someone to drive the ego (its ``manual_control.py``). This client does,
without a window: it waits for the hero, gives a BasicAgent (CARLA's ``agents`` package, in DIR) a
destination ``--ahead-m`` along its lane, and applies the agent's control on every tick the
scenario's client makes (``wait_for_tick``), until the hero is gone. With ``--spawn X Y YAW`` (CARLA's
frame) it spawns the hero there first and readies the agent (planning its route takes a while), for
``scenario_runner.py --waitForEgo``, which then takes that hero as its ego.
"""

from __future__ import annotations

import argparse
import sys
import time

import carla


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2000)
    ap.add_argument("--agents", required=True, help="folder holding CARLA's agents package")
    ap.add_argument("--speed-kmh", type=float, default=30.0)
    ap.add_argument("--ahead-m", type=float, default=300.0)
    ap.add_argument("--wait-s", type=float, default=120.0)
    ap.add_argument("--spawn", type=float, nargs=3, metavar=("X", "Y", "YAW"), default=None)
    args = ap.parse_args()
    sys.path.insert(0, args.agents)
    from agents.navigation.basic_agent import BasicAgent  # noqa: PLC0415 - CARLA's, not shipped

    client = carla.Client(args.host, args.port)
    client.set_timeout(20.0)
    deadline, hero = time.time() + args.wait_s, None
    if args.spawn:
        world = client.get_world()
        bp = world.get_blueprint_library().find("vehicle.lincoln.mkz_2020")
        bp.set_attribute("role_name", "hero")
        x, y, yaw = args.spawn
        hero = world.spawn_actor(bp, carla.Transform(carla.Location(x, y, 0.5), carla.Rotation(yaw=yaw)))
    while hero is None and time.time() < deadline:
        world = client.get_world()
        hero = next((a for a in world.get_actors().filter("vehicle.*")
                     if a.attributes.get("role_name") == "hero"), None)
        if hero is None:
            time.sleep(0.5)
    if hero is None:
        sys.exit("no hero vehicle appeared")
    world = hero.get_world()
    agent = BasicAgent(hero, args.speed_kmh)
    wp = world.get_map().get_waypoint(hero.get_location())
    goal = wp.next(args.ahead_m)[0]
    agent.set_destination(goal.transform.location)
    print("agent ready", flush=True)
    ticks = 0
    while hero.is_alive:
        try:
            world.wait_for_tick(5.0)
        except RuntimeError:
            break
        if not hero.is_alive:
            break
        hero.apply_control(agent.run_step())
        ticks += 1
    print(f"drove the hero for {ticks} ticks", flush=True)


if __name__ == "__main__":
    main()
