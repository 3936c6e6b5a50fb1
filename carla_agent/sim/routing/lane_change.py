"""A lane change back to the route's lane, as a command (CARLA's CHANGELANELEFT / CHANGELANERIGHT).

CARLA's ``GlobalRoutePlanner`` gives a route's lane changes as their own
RoadOptions, and a route's lane is one lane: on a road with two lanes each way
a turn may be meant to end in the inner lane, and a 4-command network cannot
know which (nor find its way back from the oncoming lane after too tight a
turn: lane following keeps whatever lane it is in). So, outside the junctions,
when the car is more than :data:`START_M` off the route lane's centre, the
route asks for a lane change towards it, until the car is within
:data:`DONE_M`. A junction's command (LEFT, RIGHT, STRAIGHT) always wins.

Plain Python: both backends feed it their route command and the car's lateral
offset from the route lane.
"""

from __future__ import annotations

from carla_agent.sim.routing.road_option import RoadOption

#: [m] |offset| from the route lane's centre at which a lane change is asked: past half a
#: 3.5 m lane and the noise a lane-keeping drive has, i.e. the car's centre is in the next lane.
START_M = 2.0
#: [m] |offset| at which the lane change is done and the command is LANEFOLLOW again.
DONE_M = 0.5


class LaneChangeCommand:
    """Turns the route's command and the car's offset into the command to drive by.

    Call it once per tick, in order; :meth:`reset` at the start of each drive.
    """

    def __init__(self) -> None:
        self.active: RoadOption | None = None

    def reset(self) -> None:
        self.active = None

    def __call__(self, route_command: int, lateral_offset_m: float) -> int:
        """The command for this tick (a RoadOption value).

        Args:
            route_command: the route's command here (RoadOption value): a junction's, or LANEFOLLOW.
            lateral_offset_m: [m] the car's offset from the route lane's centre, positive to the right.
        """
        if int(route_command) != int(RoadOption.LANEFOLLOW):
            self.active = None
            return int(route_command)
        off = float(lateral_offset_m)
        if self.active is not None and abs(off) <= DONE_M:
            self.active = None
        elif abs(off) > START_M or self.active is not None:
            # Re-aimed every tick: a lane change that overshoots the route lane turns round.
            self.active = RoadOption.CHANGELANERIGHT if off < 0 else RoadOption.CHANGELANELEFT
        return int(self.active if self.active is not None else RoadOption.LANEFOLLOW)
