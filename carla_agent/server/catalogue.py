"""CARLA 0.9.16's vehicle catalogue as the served blueprint library offers it.

The ids are those of CARLA's ``Docs/catalogue_vehicles.md`` (0.9.16): 41 vehicles, generation 1
and 2. Each blueprint carries CARLA's tags (``vehicle`` and the make and model tokens of its id, so
``filter('model3')`` finds ``vehicle.tesla.model3``) and attributes (``base_type``
car/truck/van/bus/motorcycle/bicycle, ``generation``, ``number_of_wheels``, ``has_lights``,
``special_type`` "", "electric", "emergency" or "taxi", ``color`` with recommended values), and its
own bounding box: ``extent`` half sizes in metres (x forward, y left, z up) close to CARLA's for that
model. The embedded vehicle model itself is one car; the extent is what the client sees
(``get_actor_bounding_box``, ``actor.bounding_box``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from carla_agent.server.wire import A_BOOL, A_INT, A_RGB, A_STRING, attr

Extent = Tuple[float, float, float]


@dataclass(frozen=True)
class VehicleModel:
    """One catalogue entry: ``id`` (``vehicle.make.model``), ``base_type``, ``generation`` (1 or 2),
    ``wheels``, ``has_lights``, ``special_type``, ``extent`` (half sizes, metres)."""

    id: str
    base_type: str
    generation: int
    extent: Extent
    wheels: int = 4
    has_lights: bool = False
    special_type: str = ""


def _m(id_, base, gen, extent, wheels=4, lights=None, special=""):
    return VehicleModel(id_, base, gen, extent, wheels, gen == 2 if lights is None else lights, special)


_CAR, _TRUCK, _VAN, _BUS, _MOTO, _BIKE = "car", "truck", "van", "bus", "motorcycle", "bicycle"
_MOTO_EXTENT, _BIKE_EXTENT = (1.10, 0.40, 0.75), (0.82, 0.19, 0.80)

#: The catalogue, in the order the library lists it (the ego's model first).
MODELS = (
    _m("vehicle.lincoln.mkz_2020", _CAR, 2, (2.45, 1.05, 0.75)),
    _m("vehicle.tesla.model3", _CAR, 1, (2.40, 1.08, 0.76), lights=True, special="electric"),
    _m("vehicle.audi.a2", _CAR, 1, (1.86, 0.90, 0.77)),
    _m("vehicle.toyota.prius", _CAR, 1, (2.26, 1.00, 0.77), special="electric"),
    _m("vehicle.audi.etron", _CAR, 1, (2.43, 1.04, 0.82), lights=True, special="electric"),
    _m("vehicle.audi.tt", _CAR, 1, (2.09, 1.00, 0.69)),
    _m("vehicle.bmw.grandtourer", _CAR, 1, (2.31, 1.12, 0.83)),
    _m("vehicle.chevrolet.impala", _CAR, 1, (2.68, 1.02, 0.71)),
    _m("vehicle.citroen.c3", _CAR, 1, (1.99, 0.93, 0.81)),
    _m("vehicle.dodge.charger_2020", _CAR, 2, (2.50, 1.05, 0.77)),
    _m("vehicle.dodge.charger_police", _CAR, 1, (2.49, 1.02, 0.78), lights=True, special="emergency"),
    _m("vehicle.dodge.charger_police_2020", _CAR, 2, (2.62, 1.04, 0.82), special="emergency"),
    _m("vehicle.ford.crown", _CAR, 2, (2.68, 0.90, 0.78), special="taxi"),
    _m("vehicle.ford.mustang", _CAR, 1, (2.36, 0.96, 0.65), lights=True),
    _m("vehicle.jeep.wrangler_rubicon", _CAR, 1, (1.93, 0.95, 0.94)),
    _m("vehicle.lincoln.mkz_2017", _CAR, 1, (2.45, 1.06, 0.76), lights=True),
    _m("vehicle.mercedes.coupe", _CAR, 1, (2.51, 1.08, 0.83)),
    _m("vehicle.mercedes.coupe_2020", _CAR, 2, (2.34, 1.00, 0.72)),
    _m("vehicle.micro.microlino", _CAR, 1, (1.10, 0.74, 0.69), special="electric"),
    _m("vehicle.mini.cooper_s", _CAR, 1, (1.91, 0.97, 0.75)),
    _m("vehicle.mini.cooper_s_2021", _CAR, 2, (2.27, 1.00, 0.89)),
    _m("vehicle.nissan.micra", _CAR, 1, (1.82, 0.91, 0.76)),
    _m("vehicle.nissan.patrol", _CAR, 1, (2.30, 0.97, 0.93)),
    _m("vehicle.nissan.patrol_2021", _CAR, 2, (2.78, 1.07, 1.02)),
    _m("vehicle.seat.leon", _CAR, 1, (2.10, 0.91, 0.74)),
    _m("vehicle.carlamotors.carlacola", _TRUCK, 1, (2.60, 1.31, 1.23)),
    _m("vehicle.carlamotors.firetruck", _TRUCK, 2, (4.23, 1.42, 1.90), special="emergency"),
    _m("vehicle.sixwheeltruck.sixwheeltruck", _TRUCK, 2, (3.80, 1.30, 1.70), wheels=6),
    _m("vehicle.tesla.cybertruck", _TRUCK, 2, (3.14, 1.19, 1.05), special="electric"),
    _m("vehicle.ford.ambulance", _VAN, 2, (3.18, 1.19, 1.20), special="emergency"),
    _m("vehicle.mercedes.sprinter", _VAN, 2, (2.96, 0.99, 1.28)),
    _m("vehicle.volkswagen.t2", _VAN, 1, (2.24, 1.03, 1.02)),
    _m("vehicle.volkswagen.t2_2021", _VAN, 2, (2.20, 0.90, 1.00)),
    _m("vehicle.mitsubishi.fusorosa", _BUS, 2, (5.14, 1.96, 1.85)),
    _m("vehicle.harley-davidson.low_rider", _MOTO, 1, _MOTO_EXTENT, wheels=2),
    _m("vehicle.kawasaki.ninja", _MOTO, 1, _MOTO_EXTENT, wheels=2),
    _m("vehicle.vespa.zx125", _MOTO, 1, (0.90, 0.40, 0.75), wheels=2),
    _m("vehicle.yamaha.yzf", _MOTO, 1, _MOTO_EXTENT, wheels=2),
    _m("vehicle.bh.crossbike", _BIKE, 1, _BIKE_EXTENT, wheels=2),
    _m("vehicle.diamondback.century", _BIKE, 1, _BIKE_EXTENT, wheels=2),
    _m("vehicle.gazelle.omafiets", _BIKE, 1, _BIKE_EXTENT, wheels=2),
)
BY_ID: Dict[str, VehicleModel] = {m.id: m for m in MODELS}
COLORS = ("255,255,255", "0,0,0", "200,20,20", "20,60,180", "120,120,120", "220,200,40", "40,120,60")
DEFAULT_EXTENT: Extent = BY_ID["vehicle.lincoln.mkz_2020"].extent


def extent_of(type_id: str) -> Extent:
    """The bounding-box half sizes (m) of blueprint ``type_id`` (the MKZ's for ids not in the catalogue)."""
    m = BY_ID.get(type_id)
    return m.extent if m is not None else DEFAULT_EXTENT


def tags(model: VehicleModel) -> str:
    """CARLA's tags of a vehicle blueprint (``FillIdAndTags``): ``vehicle``, its make and its model."""
    _, make, name = model.id.split(".", 2)
    return f"vehicle,{make},{name}"


def definitions(uid0: int) -> list:
    """The ``ActorDefinition`` ``[uid, id, tags, attributes]`` of every catalogue vehicle, uids from ``uid0``."""
    out = []
    for k, m in enumerate(MODELS):
        bicycle = m.base_type == _BIKE
        out.append([uid0 + k, m.id, tags(m), [
            attr("role_name", A_STRING, "autopilot", ("autopilot", "scenario", "ego_vehicle", "hero"), True),
            attr("color", A_RGB, COLORS[k % len(COLORS)], COLORS, True),
            attr("number_of_wheels", A_INT, str(m.wheels)),
            attr("generation", A_INT, str(m.generation)),
            attr("base_type", A_STRING, m.base_type),
            attr("special_type", A_STRING, m.special_type),
            attr("has_dynamic_doors", A_BOOL, "false"),
            attr("has_lights", A_BOOL, "true" if m.has_lights else "false"),
            attr("sticky_control", A_BOOL, "true", ("true", "false"), True),
            attr("terramechanics", A_BOOL, "false", ("true", "false"), True),
        ] + ([attr("driver_id", A_INT, "0", ("0", "1", "2"), True)] if bicycle or m.base_type == _MOTO else [])])
    return out


#: CARLA 0.9.16's post-processing attributes of ``sensor.camera.rgb`` with their defaults: offered
#: so that clients setting them (``manual_control.py``'s distorted camera) work; the embedded renderer
#: draws without them.
RGB_CAMERA_EXTRA = (
    ("bloom_intensity", 3, "0.675"), ("fstop", 3, "1.4"), ("iso", 3, "100.0"), ("lens_flare_intensity", 3, "0.1"),
    ("shutter_speed", 3, "200.0"), ("min_fstop", 3, "1.2"), ("blade_count", 2, "5"),
    ("exposure_mode", 4, "histogram"), ("exposure_compensation", 3, "0.0"), ("exposure_min_bright", 3, "10.0"),
    ("exposure_max_bright", 3, "12.0"), ("exposure_speed_up", 3, "3.0"), ("exposure_speed_down", 3, "1.0"),
    ("calibration_constant", 3, "16.0"), ("focal_distance", 3, "1000.0"), ("blur_amount", 3, "1.0"),
    ("blur_radius", 3, "0.0"), ("motion_blur_intensity", 3, "0.45"), ("motion_blur_max_distortion", 3, "0.35"),
    ("motion_blur_min_object_screen_size", 3, "0.1"), ("slope", 3, "0.88"), ("toe", 3, "0.55"),
    ("shoulder", 3, "0.26"), ("black_clip", 3, "0.0"), ("white_clip", 3, "0.04"), ("temp", 3, "6500.0"),
    ("tint", 3, "0.0"), ("chromatic_aberration_intensity", 3, "0.0"), ("chromatic_aberration_offset", 3, "0.0"),
)


def rgb_camera_extra() -> list:
    """``ActorAttribute`` s of :data:`RGB_CAMERA_EXTRA` (types: 2 int, 3 float, 4 string), modifiable."""
    return [attr(n, t, v, ("manual", "histogram") if n == "exposure_mode" else (v,), True)
            for n, t, v in RGB_CAMERA_EXTRA]
