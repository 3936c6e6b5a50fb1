"""The recorder's text queries in CARLA 0.9.16's layout (``CarlaRecorderQuery.cpp``):
``show_recorder_file_info``, ``show_recorder_collisions``, ``show_recorder_actors_blocked``.

Each takes a :class:`~carla_agent.server.recording_file.Recording` and returns the text the
client prints. As CARLA's, locations in these texts are centimetres (Unreal units) and rotations
``(roll, pitch, yaw)`` degrees; times are seconds of the recording.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

from carla_agent.server.recording_file import Recording, date_text


def _g(v: float) -> str:
    """A number as C++'s default ostream writes it (6 significant digits)."""
    return f"{float(v) + 0.0:g}"  # + 0.0: no "-0"


def header(rec: Recording) -> str:
    return f"Version: 1\nMap: {rec.map_name}\nDate: {date_text(rec.date)}\n\n"


def footer(rec: Recording) -> str:
    return f"\nFrames: {len(rec.frames)}\nDuration: {_g(rec.duration_s)} seconds\n"


def _attr_value(a) -> str:
    return str(a[2]) if len(a) > 2 else str(a[-1])


def file_info(rec: Recording, show_all: bool = False) -> str:
    """Header; per frame with events ``Frame N at T seconds`` and its ``Create``, ``Destroy``,
    ``Parenting``, ``Collision`` lines (with ``show_all``: every frame, its ``Positions`` and
    ``State traffic lights``); then ``Frames`` and ``Duration``."""
    out = [header(rec)]
    heroes = set()
    collision_id = 0
    for fr in rec.frames:
        lines: List[str] = []
        for actor_id, type_id, kind, loc, attrs in fr.created:
            lines.append(f" Create {actor_id}: {type_id} ({kind}) at ({_g(loc[0] * 100)}, {_g(loc[1] * 100)}, "
                         f"{_g(loc[2] * 100)})")
            for a in attrs:
                lines.append(f"  {a[0]} = {_attr_value(a)}")
                if a[0] == "role_name" and _attr_value(a) == "hero":
                    heroes.add(actor_id)
        lines += [f" Destroy {i}" for i in fr.destroyed]
        lines += [f" Parenting {i} with {p} (parent)" for i, p in fr.parents]
        for c in fr.collisions:
            collision_id += 1
            h1, h2 = (" (hero) " if c[0] in heroes else ""), (" (hero) " if c[1] in heroes else "")
            lines.append(f" Collision id {collision_id} between {c[0]}{h1} with {c[1]}{h2}")
        if show_all:
            if fr.positions:
                lines.append(f" Positions: {len(fr.positions)}")
                lines += [f"  Id: {p[0]} Location: ({_g(p[1] * 100)}, {_g(p[2] * 100)}, {_g(p[3] * 100)}) "
                          f"Rotation: ({_g(p[4])}, {_g(p[5])}, {_g(p[6])})" for p in fr.positions]
            if fr.lights:
                lines.append(f" State traffic lights: {len(fr.lights)}")
                lines += [f"  Id: {i} state: {state} frozen: {int(bool(frozen))} elapsedTime: {_g(t)}"
                          for i, state, frozen, t in fr.lights]
        if lines or show_all:
            out.append(f"Frame {fr.id} at {_g(fr.elapsed_s)} seconds\n")
            out.extend(line + "\n" for line in lines)
    out.append(footer(rec))
    return "".join(out)


def _actors(rec: Recording) -> Dict[int, Tuple[str, str]]:
    """Recorded id -> (type id, role name) of every actor created in the recording."""
    out: Dict[int, Tuple[str, str]] = {}
    for fr in rec.frames:
        for actor_id, type_id, _, _, attrs in fr.created:
            role = next((_attr_value(a) for a in attrs if a[0] == "role_name"), "")
            out[actor_id] = (type_id, role)
    return out


def _category(type_id: str, role: str) -> str:
    """CARLA's collision categories: h hero, v vehicle, w walker, t traffic light, o other."""
    if role == "hero":
        return "h"
    if type_id.startswith("vehicle."):
        return "v"
    if type_id.startswith("walker."):
        return "w"
    if type_id.startswith("traffic.traffic_light"):
        return "t"
    return "o"


def collisions(rec: Recording, category1: str, category2: str) -> str:
    """Every collision between an actor of ``category1`` and one of ``category2`` (each one of
    ``a`` any, ``h``, ``v``, ``w``, ``t``, ``o``), in either order, when it began."""
    actors = _actors(rec)
    out = [header(rec), f"{'Time':>8} {'Types':>6} {'Id':>6} {'Actor 1':<35} {'Id':>6} {'Actor 2':<35}\n"]
    for fr in rec.frames:
        for c in fr.collisions:
            id1, id2 = int(c[0]), int(c[1])
            name1 = actors.get(id1, ("", ""))
            name2 = actors.get(id2, (c[2] if len(c) > 2 and c[2] else "", ""))
            t1, t2 = _category(*name1), _category(*name2)
            if not (_match(category1, t1) and _match(category2, t2)
                    or _match(category1, t2) and _match(category2, t1)):
                continue
            out.append(f"{fr.elapsed_s:>8.0f}   {t1} {t2}  {id1:>6} {name1[0]:<35} {id2:>6} {name2[0]:<35}\n")
    out.append(footer(rec))
    return "".join(out)


def _match(category: str, kind: str) -> bool:
    return category == "a" or category == kind


def blocked(rec: Recording, min_time_s: float, min_distance_cm: float) -> str:
    """Vehicles and walkers that moved less than ``min_distance_cm`` for at least ``min_time_s``:
    when that began, and for how long (CARLA's ``QueryBlocked``, longest first)."""
    actors = _actors(rec)
    anchor: Dict[int, Tuple[float, float, float]] = {}
    since: Dict[int, float] = {}
    still: Dict[int, float] = {}
    results: List[Tuple[float, int, float]] = []  # (duration, id, start)
    previous = 0.0
    for fr in rec.frames:
        dt = fr.elapsed_s - previous
        previous = fr.elapsed_s
        for p in fr.positions:
            i = int(p[0])
            if not actors.get(i, ("",))[0].startswith(("vehicle.", "walker.pedestrian")):
                continue
            here = (p[1] * 100.0, p[2] * 100.0, p[3] * 100.0)
            if i not in anchor:
                anchor[i], still[i] = here, 0.0
                continue
            if math.dist(anchor[i], here) < min_distance_cm:
                if still[i] == 0.0:
                    since[i] = fr.elapsed_s
                still[i] += dt
            else:
                if still[i] >= min_time_s and still[i] > 0.0:
                    results.append((still[i], i, since[i]))
                still[i] = 0.0
                anchor[i] = here
    results += [(d, i, since[i]) for i, d in still.items() if d >= min_time_s and d > 0.0]
    out = [header(rec), f"{'Time':>8} {'Id':>6} {'Actor':<35} {'Duration':>10}\n"]
    for duration, i, start in sorted(results, key=lambda r: -r[0]):
        out.append(f"{start:>8.0f} {i:>6} {actors.get(i, ('',))[0]:<35} {duration:>10.0f}\n")
    out.append(footer(rec))
    return "".join(out)
