"""The embedded simulator's front camera: RGB and semantic frames from the road model.

One :meth:`Renderer.render` call draws both images from the same polygons in the
same pass: the RGB image with anti-aliased edges (``cv2.LINE_AA``), the label
image without anti-aliasing, so every label is exactly where its surface is.

How a frame is made (OpenDRIVE frame, flat ground z = 0):

1. Copy the background precomputed for this camera and weather: bare terrain
   below the horizon; above it a slice, chosen by the heading, of a sky
   panorama with clouds; then the distant hills, which turn with the car too.
2. Ground, into the rows below the horizon only: sample the reference line
   from behind the car to the view distance (spacing grows with distance and
   shrinks with the focal length), offset every lane, mark and texture edge at
   once, and build each surface as ONE strip polygon (left edge forward, right
   edge back). Flat ground maps one-to-one onto the image below the horizon, so
   a strip that is simple on the ground is simple on screen and OpenCV's
   even-odd fill needs no triangulation; long polygons also cost far less than
   quads, whose every edge would be an anti-aliased line. All polygons of the
   frame are clipped against the near plane and projected in one vectorised
   pass, then each colour is one ``cv2.fillPoly`` call.
3. Lane marks fade toward the asphalt as their projected width drops below a
   pixel (keeping their average brightness instead of aliasing); dashes whose
   12 m period would shrink below a few pixels become a faint continuous line
   of the same average brightness, so far marks never flicker.
4. Shadows (sun and contact) multiply a gain image; then one multiply-add applies
   the per-pixel light (headlight pool) and fog/haze of the ground, both
   precomputed per camera and weather.
5. Objects and vehicles, far to near (painter's algorithm), lit by the sun and
   fogged by their distance; their polygons are projected in one call too.
   Glare and rain streaks go on top.

Deterministic: textures come from ``seed``, rain from
``np.random.default_rng((seed, frame))``; no global RNG.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.camera import Camera
from carla_agent.sim.embedded.weather import Weather, resolve_weather
from carla_agent.sim.embedded.world import StaticObject, VehicleBox
from carla_agent.sim.observation import SemanticClass
from carla_agent.sim.embedded.road import Road

log = logging.getLogger(__name__)

RGB = Tuple[int, int, int]

#: Fixed-point bits of the vertices handed to OpenCV (1/16 pixel).
SHIFT = 4
_ONE = float(1 << SHIFT)
_AA, _HARD = cv2.LINE_AA, cv2.LINE_8
#: Near clipping plane, metres along the optical axis. Visible ground is always
#: farther (the lowest image row sees ground > 1 m away), so clipping is never
#: seen; it only keeps projected coordinates bounded.
NEAR_CLIP_M = 0.3
#: Reference-line sampling at a 400 px focal length; steps scale with
#: sqrt(400 / focal) so the chord error stays about half a pixel.
NEAR_STEP_M = 0.5  # within NEAR_RANGE_M of the car
NEAR_RANGE_M = 6.0
GROWTH = 0.1  # farther, each step is this fraction of its distance ...
MAX_STEP_M = 10.0  # ... up to this
BEHIND_M = 80.0  # how far back the road is sampled (a hairpin's other leg can be in view)
#: The road is drawn until it is this many pixels below the horizon.
END_GAP_PX = 0.75
MIN_VIEW_M, MAX_VIEW_M = 120.0, 500.0
#: Objects are drawn up to this distance (they are specks and fogged beyond).
OBJECT_VIEW_M = 260.0
#: CARLA-like broken lines: 3 m dashes every 12 m, phase fixed to s.
DASH_M, DASH_PERIOD_M = 3.0, 12.0
#: Gap between the two lines of a double mark, metres.
DOUBLE_GAP_M = 0.12
#: Brightness levels of distance-faded marks.
MARK_LEVELS = 6
#: A mark w px wide is drawn with alpha w / (w + this): OpenCV's anti-aliased
#: edges add about a pixel of coverage, so this keeps the mark's total light.
MARK_SOFTNESS_PX = 0.7
#: Tyre tracks: distance from the lane centre, width, how far ahead they are drawn.
TRACK_OFFSET_M, TRACK_WIDTH_M, TRACK_VIEW_M = 0.82, 0.55, 70.0
#: Texture patches are drawn this far ahead.
PATCH_VIEW_M = 90.0
#: Rain streak patterns repeat after this many frames.
RAIN_FRAMES = 512
#: Width of the gravel strip between the road edge and the verge, metres.
GRAVEL_M = 0.45
#: Ego headlamps: metres ahead of the vehicle centre, half the spacing, height.
LAMP_FORWARD_M, LAMP_HALF_SPACING_M = 2.3, 0.75

# Albedo: what each surface shows under clear-noon light (ground_light ~ 1).
ASPHALT: RGB = (86, 86, 90)
ASPHALT_TRACK: RGB = (79, 79, 83)
ASPHALT_PATCHES: Tuple[RGB, RGB] = ((74, 74, 78), (97, 96, 98))
SHOULDER: RGB = (108, 105, 100)
CURB: RGB = (168, 166, 158)
SIDEWALK: RGB = (150, 147, 140)
GRASS: RGB = (84, 116, 54)
GRASS_PATCHES: Tuple[RGB, RGB] = ((72, 104, 48), (106, 122, 62))
DIRT: RGB = (138, 116, 86)
DIRT_PATCHES: Tuple[RGB, RGB] = ((124, 103, 76), (150, 130, 98))
GRAVEL_EDGE: RGB = (128, 120, 104)
MARK_WHITE: RGB = (236, 236, 230)
MARK_YELLOW: RGB = (232, 178, 46)
HILLS: RGB = (58, 84, 52)
TRUNK: RGB = (84, 64, 46)
WINDOW: RGB = (48, 58, 70)
GLASS: RGB = (34, 40, 48)
TYRES: RGB = (28, 28, 30)
TAIL_LIGHT: RGB = (150, 20, 20)
HEAD_LIGHT: RGB = (215, 215, 205)
SIGN_BORDER: RGB = (190, 30, 30)
POST: RGB = (110, 110, 115)
LAMP_HEAD: RGB = (60, 60, 64)

_L = SemanticClass
_ROAD, _MARK, _SHOULDER = int(_L.ROAD), int(_L.LANE_MARKING), int(_L.SHOULDER)
_TERRAIN, _SKY, _VEHICLE, _OBJECT = int(_L.TERRAIN), int(_L.SKY), int(_L.VEHICLE), int(_L.OBJECT)
_TREE, _POLE, _BUILDING, _SIGN = 0, 1, 2, 3
# Corner patterns of upright quads: across (x), up (z), a bar along its axis.
_QX = np.array([-1.0, 1.0, 1.0, -1.0])
_QZ = np.array([0.0, 0.0, 1.0, 1.0])
_BX = np.array([0.0, 1.0, 1.0, 0.0])
#: Box footprint corners (counter-clockwise) in units of half length / half width.
_BOX_LX = np.array([1.0, 1.0, -1.0, -1.0])
_BOX_LY = np.array([-1.0, 1.0, 1.0, -1.0])
_NEXT4 = np.array([1, 2, 3, 0])
_SLOT2 = np.array([0, 1])
_KIND01 = np.array([0, 1])
_PREV4 = np.array([3, 0, 1, 2])
#: Outline of a crown's shadow (8 vertices).
_RING_COS = np.cos(np.arange(8) * (np.pi / 4.0))
_RING_SIN = np.sin(np.arange(8) * (np.pi / 4.0))
#: Colour of the ego's headlights (warm white), as a light multiplier.
_HEADLIGHT_RGB = np.array([1.0, 0.97, 0.9])
_TRUNK_F = np.array(TRUNK, np.float64)
_LAMP_HEAD_F = np.array(LAMP_HEAD, np.float64)
_LAMP_GLOW_F = np.array((255.0, 214.0, 150.0))
_WINDOW_F = np.array(WINDOW, np.float64)
#: A dash is sampled at 4 points (3 pieces) so it follows curves.
_DASH_PIECES = np.array([0.0, 1.0, 2.0, 3.0]) * (DASH_M / 3.0)


@dataclass(frozen=True)
class _MarkLine:
    """One painted line (a double mark is two) centred at ``t_m``."""

    t_m: float
    width_m: float
    yellow: bool
    broken: bool


def _mix(a, b, k: float) -> RGB:
    return tuple(int(round(x + (y - x) * k)) for x, y in zip(a, b))  # type: ignore[return-value]


def _scale(rgb, gain) -> RGB:
    return tuple(int(min(255, max(0, round(c * g)))) for c, g in zip(rgb, gain))  # type: ignore[return-value]


def _smoothstep(x):
    x = np.minimum(np.maximum(x, 0.0), 1.0)  # (np.clip's Python wrapper costs more than the maths)
    return x * x * (3.0 - 2.0 * x)


def _swept_boxes(x, y, yaw, length, width, vx, vy) -> Tuple[np.ndarray, np.ndarray]:
    """Ground outlines of box footprints swept along ``(vx, vy)`` (a box's shadow), 8 vertices each.

    The sweep of a convex polygon along a vector is its outline with the
    vertices whose edges face the vector moved by it. Each corner emits two
    vertices: itself moved if its incoming edge faces the sweep, then itself
    moved if its outgoing edge does; where both agree the two coincide (a
    harmless repeat), where they differ the outline steps along the sweep.
    All arguments are ``(k,)`` arrays; returns ``(x, y)``, each ``(k, 8)``.
    """
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    lx = _BOX_LX * (0.5 * length)[:, None]
    ly = _BOX_LY * (0.5 * width)[:, None]
    px = x[:, None] + c * lx - s * ly  # (k, 4) counter-clockwise
    py = y[:, None] + s * lx + c * ly
    # Edge i runs from corner i to i + 1; its outward normal is the edge turned clockwise, (ey, -ex).
    ex, ey = px[:, _NEXT4] - px, py[:, _NEXT4] - py
    vx, vy = vx[:, None], vy[:, None]
    faces = ey * vx - ex * vy > 0
    prev = faces[:, _PREV4]
    out_x = np.empty((len(x), 4, 2))
    out_y = np.empty((len(x), 4, 2))
    out_x[:, :, 0] = px + vx * prev
    out_y[:, :, 0] = py + vy * prev
    out_x[:, :, 1] = px + vx * faces
    out_y[:, :, 1] = py + vy * faces
    return out_x.reshape(-1, 8), out_y.reshape(-1, 8)


@dataclass(frozen=True)
class _CarTemplate:
    """Faces of a car in its own frame, in drawing order, in units of (length, width, height).

    Attributes (F faces):
        corners: ``(F, 4, 3)`` face corners; centre: ``(F, 3)`` face centres; normal: ``(F, 3)``.
        albedo: ``(F, 3)`` colours of unpainted faces; paint: ``(F,)`` takes the car's colour.
        glow: ``(F,)`` extra light of lamps; lamp / lamp_l: ``(F,)`` is a lamp (array / list).
        lod: ``(F,)`` belongs to the one-box stand-in for far cars.
        box_l: ``(F,)`` the box a face belongs to (its faces never overlap: one label call per box); 0 for lamps.
    """

    corners: np.ndarray
    centre: np.ndarray
    normal: np.ndarray
    albedo: np.ndarray
    paint: np.ndarray
    glow: np.ndarray
    lamp: np.ndarray
    lamp_l: Tuple[bool, ...]
    lod: np.ndarray
    box_l: Tuple[int, ...]


def _car_template() -> _CarTemplate:
    faces = []  # (corners (4, 3), normal, albedo or None for paint, glow, lamp, lod, box)
    boxes = [0]

    def box(cx, hl, hw, z0, z1, sides_rgb, top_rgb, lod=False, top=True):
        boxes[0] += 1
        # front (+x), back, left (+y), right: each (corner order) and normal.
        walls = (((cx + hl, -hw), (cx + hl, hw), (1.0, 0.0)), ((cx - hl, hw), (cx - hl, -hw), (-1.0, 0.0)),
                 ((cx + hl, hw), (cx - hl, hw), (0.0, 1.0)), ((cx - hl, -hw), (cx + hl, -hw), (0.0, -1.0)))
        for (ax, ay), (bx, by), (nx, ny) in walls:
            faces.append((((ax, ay, z0), (bx, by, z0), (bx, by, z1), (ax, ay, z1)), (nx, ny, 0.0), sides_rgb, 0.0,
                          False, lod, boxes[0]))
        if top:
            faces.append((((cx + hl, -hw, z1), (cx + hl, hw, z1), (cx - hl, hw, z1), (cx - hl, -hw, z1)),
                          (0.0, 0.0, 1.0), top_rgb, 0.0, False, lod, boxes[0]))

    # Wheels and underbody, the painted body, the glasshouse with a painted roof.
    box(0.0, 0.45, 0.475, 0.0, 0.24, TYRES, TYRES, top=False)
    box(0.0, 0.5, 0.5, 0.2, 0.62, None, None)
    box(-0.08, 0.25, 0.42, 0.62, 1.0, GLASS, None)
    # Lamps just outside the body's ends: tail lights at the back, headlights at the front.
    for end, rgb in ((-1.0, TAIL_LIGHT), (1.0, HEAD_LIGHT)):
        x = end * 0.502
        for side in (-1.0, 1.0):
            y0, y1 = side * 0.24, side * 0.48
            if end * side > 0:
                y0, y1 = y1, y0
            faces.append((((x, y0, 0.45), (x, y1, 0.45), (x, y1, 0.55), (x, y0, 0.55)), (end, 0.0, 0.0), rgb,
                          0.3, True, False, 0))
    box(0.0, 0.5, 0.5, 0.0, 1.0, None, None, lod=True)
    corners = np.array([f[0] for f in faces], np.float64)
    return _CarTemplate(
        corners=corners, centre=corners.mean(axis=1), normal=np.array([f[1] for f in faces], np.float64),
        albedo=np.array([f[2] if f[2] is not None else (0, 0, 0) for f in faces], np.float64),
        paint=np.array([f[2] is None for f in faces]), glow=np.array([f[3] for f in faces]),
        lamp=np.array([f[4] for f in faces]), lamp_l=tuple(bool(f[4]) for f in faces),
        lod=np.array([f[5] for f in faces]), box_l=tuple(int(f[6]) for f in faces))


_CAR = _car_template()


class _Vehicles:
    """The frame's vehicles in view as arrays (OpenDRIVE frame, metres, radians)."""

    def __init__(self, boxes: Sequence[VehicleBox]) -> None:
        self.x = np.array([v.x_m for v in boxes], np.float64)
        self.y = np.array([v.y_m for v in boxes], np.float64)
        self.yaw = np.array([v.yaw_rad for v in boxes], np.float64)
        self.length = np.array([v.length_m for v in boxes], np.float64)
        self.width = np.array([v.width_m for v in boxes], np.float64)
        self.height = np.array([v.height_m for v in boxes], np.float64)
        self.color = np.array([v.color for v in boxes], np.float64).reshape(-1, 3)


def _layout(polys: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Flat layout of polygons given as vertex-index arrays.

    Returns ``(vidx, nxt, pid, n)``: all vertex indices in order, the position of
    each vertex's successor (cyclic within its polygon), its polygon id, and the
    number of polygons.
    """
    n = len(polys)
    if n == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, 0
    counts = np.fromiter((len(p) for p in polys), np.int64, n)
    vidx = np.concatenate(polys).astype(np.int64)
    ends = np.cumsum(counts)
    nxt = np.arange(1, len(vidx) + 1)
    nxt[ends - 1] = ends - counts
    return vidx, nxt, np.repeat(np.arange(n), counts), n


class Renderer:
    """Draws RGB + semantic camera frames of one road.

    Args:
        road: the road (its dense reference-line samples are used directly).
        camera_spec: a :class:`~carla_agent.sim.scenario.CameraSpec`.
        weather: a resolved :class:`~carla_agent.sim.embedded.weather.Weather` or a
            :class:`~carla_agent.sim.scenario.WeatherSpec`.
        static_objects: roadside objects (trees, poles, buildings, signs).
        seed: fixes the world textures (asphalt and verge patches, tree shapes,
            lit windows, the hills) and, with the frame number, the rain.
    """

    def __init__(self, road: Road, camera_spec, weather, static_objects: Sequence[StaticObject] = (),
                 seed: int = 0) -> None:
        self.road = road
        self.camera = Camera(camera_spec)
        self.seed = int(seed)
        self.width_px = self.camera.width_px
        self.height_px = self.camera.height_px
        cam = self.camera
        self._tan_half_fov = math.tan(0.5 * cam.fov_rad) * 1.02  # a little wide: culling must not clip
        # Crown outlines: 16-gons on small images, 32-gons on large ones (the polygon error stays under a pixel).
        k_crown = 16 if self.width_px <= 320 else 32
        ang = np.pi / 2 + np.arange(k_crown) * (2.0 * np.pi / k_crown)
        self._crown_unit = np.stack([np.cos(ang), np.sin(ang)], 1)[np.r_[0:k_crown, 0]]
        self._crown_flat = 0.25 if k_crown == 16 else 0.12  # widest flat bottom that keeps it convex
        # Texture patches are drawn while a 3 m patch is over a pixel tall (focal * height * 3 / d^2).
        self._patch_view_m = float(np.clip(math.sqrt(cam.focal_px * cam.height_m * 3.0), 15.0, PATCH_VIEW_M))
        # Far enough that the road's end lies within END_GAP_PX of the horizon.
        self.view_m = float(np.clip(cam.focal_px * cam.height_m / END_GAP_PX, MIN_VIEW_M, MAX_VIEW_M))
        # The reference line's dense samples, with the heading as a unit vector (interpolated directly).
        self._ref_s, self._ref_x, self._ref_y = road.s, road.x, road.y
        self._ref_cos, self._ref_sin = np.cos(road.hdg), np.sin(road.hdg)
        self._build_sampling()
        self._build_cross_section()
        self._build_textures()
        self._build_objects(static_objects)
        self.weather: Weather
        self.set_weather(weather)

    # ======================================================================
    # setup: geometry that depends on the road and camera only
    # ======================================================================
    def _build_sampling(self) -> None:
        """Offsets along s (relative to the car) where the reference line is sampled."""
        k = float(np.clip(math.sqrt(400.0 / self.camera.focal_px), 0.5, 3.0))
        step, growth, top = NEAR_STEP_M * k, GROWTH * k, MAX_STEP_M * k
        near = list(np.arange(-NEAR_RANGE_M, NEAR_RANGE_M + 1e-9, step))
        far = [near[-1]]
        while far[-1] < self.view_m:
            far.append(far[-1] + min(top, max(step, growth * far[-1])))
        behind = [near[0]]
        while behind[-1] > -BEHIND_M:
            behind.append(behind[-1] - min(top, max(step, 2.0 * growth * -behind[-1])))
        self._s_offsets_m = np.array(behind[:0:-1] + near + far[1:], dtype=np.float64)
        self._n_samples = len(self._s_offsets_m)

    def _build_cross_section(self) -> None:
        """Lateral offsets of every edge that is drawn, and the strip polygons joining them."""
        road = self.road
        bands = []  # (t_left, t_right, lane), left to right
        t = 0.0
        for lane in road.left_lanes:
            bands.append((t + lane.width_m, t, lane))
            t += lane.width_m
        t = 0.0
        for lane in road.right_lanes:
            bands.append((t, t - lane.width_m, lane))
            t -= lane.width_m
        bands.sort(key=lambda b: -b[0])
        self._left_edge_t, self._right_edge_t = road.left_edge_t, road.right_edge_t

        def runs(types) -> List[Tuple[float, float, float]]:
            """Contiguous lanes of the given types merged into strips ``(t_left, t_right, max_ahead)``."""
            out: List[Tuple[float, float, float]] = []
            for tl, tr, lane in bands:
                if lane.type not in types:
                    continue
                if out and abs(out[-1][1] - tl) < 1e-6:
                    out[-1] = (out[-1][0], tr, math.inf)
                else:
                    out.append((tl, tr, math.inf))
            return out

        self._driving_bands = [(tl, tr) for tl, tr, lane in bands if lane.type == "driving"]
        tracks = []
        for tl, tr in self._driving_bands:
            c = 0.5 * (tl + tr)
            for side in (-1.0, 1.0):
                m = c + side * TRACK_OFFSET_M
                tracks.append((m + 0.5 * TRACK_WIDTH_M, m - 0.5 * TRACK_WIDTH_M, TRACK_VIEW_M))
        # Surfaces in drawing order: (name, strips, anti-aliased, label).
        surfaces = [
            ("gravel", [(self._left_edge_t + GRAVEL_M, self._left_edge_t, math.inf),
                        (self._right_edge_t, self._right_edge_t - GRAVEL_M, math.inf)], False, None),
            ("shoulder", [(self._left_edge_t, self._right_edge_t, math.inf)], True, _SHOULDER),
            ("asphalt", runs(("driving",)), True, _ROAD),
            ("curb", runs(("border",)), True, None),
            ("sidewalk", runs(("sidewalk",)), True, None),
            ("track", tracks, False, None),
        ]
        # Painted lines: OpenDRIVE centres a mark on its lane edge; a double mark is two lines.
        lines: List[_MarkLine] = []
        for b in road.boundaries():
            mark = b.mark
            if mark.type == "none" or mark.width_m <= 0:
                continue
            yellow = mark.color == "yellow"
            if mark.type == "solid solid":
                off = 0.5 * (DOUBLE_GAP_M + mark.width_m)
                lines += [_MarkLine(b.t_m + off, mark.width_m, yellow, False),
                          _MarkLine(b.t_m - off, mark.width_m, yellow, False)]
            else:
                lines.append(_MarkLine(b.t_m, mark.width_m, yellow, mark.type == "broken"))
        self._lines = lines
        ts: List[float] = []

        def idx(t_m: float) -> int:
            for i, v in enumerate(ts):
                if abs(v - t_m) < 1e-9:
                    return i
            ts.append(t_m)
            return len(ts) - 1

        n = self._n_samples
        ahead = self._s_offsets_m
        polys: List[np.ndarray] = []
        self._surfaces: List[Tuple[str, List[int], bool, Optional[int]]] = []
        for name, strips, aa, label in surfaces:
            ids = []
            for tl, tr, max_ahead in strips:
                a, b = idx(tl), idx(tr)
                last = int(np.searchsorted(ahead, max_ahead)) if math.isfinite(max_ahead) else n
                i = np.arange(min(n, max(last, 2)))
                ids.append(len(polys))
                polys.append(np.concatenate([a * n + i, b * n + i[::-1]]))
            self._surfaces.append((name, ids, aa, label))
        # The strips never change: their flat layout (see _layout) is built once.
        self._static_vidx, self._static_nxt, self._static_pid, self._n_static = _layout(polys)
        # Each mark line's two edges on the grid: runs of samples become polygons per frame.
        self._line_edges = np.array([[idx(ln.t_m + 0.5 * ln.width_m), idx(ln.t_m - 0.5 * ln.width_m)]
                                     for ln in lines], np.int64).reshape(-1, 2)
        self._line_width = np.array([ln.width_m for ln in lines])
        self._line_yellow = np.array([ln.yellow for ln in lines], bool)
        self._line_broken = np.array([ln.broken for ln in lines], bool)
        self._any_broken = bool(self._line_broken.any())
        self._t_m = np.array(ts, dtype=np.float64)  # lateral offsets of the grid lines
        broken = [ln for ln in lines if ln.broken]
        # Edges of the broken lines, in the order (line, edge): dash points are laid out the same way.
        self._dash_t = np.array([[ln.t_m + 0.5 * ln.width_m, ln.t_m - 0.5 * ln.width_m] for ln in broken]).reshape(-1)
        self._dash_width = np.array([ln.width_m for ln in broken])
        self._dash_yellow = np.array([ln.yellow for ln in broken], bool)

    def _build_textures(self) -> None:
        """World-fixed patches on the asphalt and the verges, from the seed.

        One patch per slot along s, shorter than the slot, so patches of one
        colour never overlap (they share one even-odd ``fillPoly``).
        """
        rng = np.random.default_rng((self.seed, 7919))
        length = self.road.length_m
        patches = []  # (s0, s1, t_left, t_right, kind) kind: 0/1 asphalt, 2/3 verge
        slot = 9.0
        for s0 in np.arange(0.0, length, slot):
            if self._driving_bands and rng.random() < 0.55:
                tl, tr = self._driving_bands[int(rng.integers(len(self._driving_bands)))]
                w = float(rng.uniform(0.6, min(2.6, tl - tr)))
                t0 = float(rng.uniform(tr, tl - w))
                a = float(s0 + rng.uniform(0.0, slot - 5.5))
                patches.append((a, a + float(rng.uniform(0.8, 5.0)), t0 + w, t0, int(rng.integers(2))))
        gslot = 7.0
        for side in (1.0, -1.0):
            edge = self._left_edge_t if side > 0 else self._right_edge_t
            for s0 in np.arange(0.0, length, gslot):
                if rng.random() < 0.8:
                    inner = edge + side * float(rng.uniform(GRAVEL_M + 0.2, 4.0))
                    outer = inner + side * float(rng.uniform(1.5, 9.0))
                    a = float(s0 + rng.uniform(0.0, 2.0))
                    b = a + float(rng.uniform(2.0, gslot - 2.2))
                    tl, tr = (outer, inner) if side > 0 else (inner, outer)
                    patches.append((a, b, tl, tr, 2 + int(rng.integers(2))))
        arr = np.array(patches, dtype=np.float64).reshape(-1, 5)
        self._patches = arr[np.argsort(arr[:, 0], kind="stable")]

    def _build_objects(self, objects: Sequence[StaticObject]) -> None:
        objs = sorted(objects, key=lambda o: o.s_m)
        self._objects = objs
        self._obj_s = np.array([o.s_m for o in objs], dtype=np.float64)
        self._obj_xy = np.array([[o.x_m, o.y_m] for o in objs], dtype=np.float64).reshape(-1, 2)
        self._obj_radius = np.array([0.5 * math.hypot(o.length_m, o.width_m) + 0.5 for o in objs])
        kinds = {"tree": _TREE, "pole": _POLE, "building": _BUILDING, "sign": _SIGN}
        self._obj_kind = np.array([kinds.get(o.kind, _POLE) for o in objs], dtype=np.int64)
        self._obj_dims = np.array([[o.length_m, o.width_m, o.height_m] for o in objs], np.float64).reshape(-1, 3)
        self._obj_yaw = np.array([o.yaw_rad for o in objs], np.float64)
        self._obj_color = np.array([o.color for o in objs], np.float64).reshape(-1, 3)
        # Which side of the road each object stands on: lamp arms reach over the road, signs face its traffic.
        if objs:
            x, y, h = self.road.pose_at(self._obj_s)
            t = -(self._obj_xy[:, 0] - x) * np.sin(h) + (self._obj_xy[:, 1] - y) * np.cos(h)
            self._obj_side = np.where(t > 0, 1.0, -1.0)
        else:
            self._obj_side = np.zeros(0)
        # Shape variety (conifer or broadleaf), stable for the seed.
        self._obj_conifer = np.random.default_rng((self.seed, 104729)).random(len(objs)) < 0.3
        # Tree shapes (used for trees only): crown half-height rv and half-width, the height of the
        # crown's centre, where the trunk meets the crown, trunk half-width, and the heights of the
        # four points projected per tree (foot, trunk top, crown centre or cone apex, highlight).
        L, Wd, Ht = self._obj_dims.T
        rv = 0.36 * Ht
        zc = Ht - rv
        zb = np.where(self._obj_conifer, 0.18 * Ht, zc - rv)
        self._tree_geo = np.stack([rv, 0.5 * Wd, zc, zb, 0.1 + 0.035 * Wd, np.zeros_like(Ht), zb,
                                   np.where(self._obj_conifer, Ht, zc), zc + 0.2 * rv], 1).reshape(-1, 9)
        # Lamp arms reach over the road; a sign faces the traffic on its side (right-hand signs face -s).
        c, s = np.cos(self._obj_yaw), np.sin(self._obj_yaw)
        toward = -self._obj_side
        self._obj_reach = np.stack([-s * toward, c * toward], 1).reshape(-1, 2)
        self._obj_facing = np.stack([c * self._obj_side, s * self._obj_side], 1).reshape(-1, 2)
        self._build_buildings()

    def _build_buildings(self) -> None:
        """Buildings never move: their faces, normals, wall centres and window grids, once.

        Faces are front (+x), back, left (+y), right and top; each is an
        upright (or, for the top, flat) quad. Window grids are per wall, with
        the lit windows of the night fixed by the seed.
        """
        bi = np.nonzero(self._obj_kind == _BUILDING)[0]
        nb = len(bi)
        self._bld_row = np.full(len(self._objects), -1, np.int64)
        self._bld_row[bi] = np.arange(nb)
        x, y = self._obj_xy[bi, 0], self._obj_xy[bi, 1]
        L, Wd, Ht = self._obj_dims[bi].T
        z0, z1 = np.zeros(nb), Ht
        c, s = np.cos(self._obj_yaw[bi]), np.sin(self._obj_yaw[bi])
        zero, one = np.zeros_like(c), np.ones_like(c)
        nx = np.stack([c, -c, -s, s, zero], 1)
        ny = np.stack([s, -s, c, -c, zero], 1)
        self._bld_nx, self._bld_ny = nx, ny
        self._bld_nz = np.array([0.0, 0.0, 0.0, 0.0, 1.0])
        ext = np.stack([0.5 * L, 0.5 * L, 0.5 * Wd, 0.5 * Wd, zero], 1)
        self._bld_px, self._bld_py = x[:, None] + nx * ext, y[:, None] + ny * ext
        self._bld_pz = np.where(self._bld_nz > 0, z1[:, None], 0.5 * (z0 + z1)[:, None])
        hl, hw = 0.5 * L, 0.5 * Wd
        self._bld_qx = np.empty((nb, 5, 4))
        self._bld_qy = np.empty((nb, 5, 4))
        self._bld_qz = np.empty((nb, 5, 4))
        self._bld_wall_c = np.empty((nb, 4, 3))
        self._bld_win_n = np.zeros((nb, 4), np.int64)
        self._bld_windows: List[List[Optional[tuple]]] = [[None] * 4 for _ in range(nb)]
        for f in range(4):
            fx, fy = nx[:, f], ny[:, f]
            tx, ty = -fy, fx
            et, en = (hw, hl) if f < 2 else (hl, hw)
            self._bld_qx[:, f] = (x + fx * en)[:, None] + tx[:, None] * et[:, None] * _QX
            self._bld_qy[:, f] = (y + fy * en)[:, None] + ty[:, None] * et[:, None] * _QX
            self._bld_qz[:, f] = z0[:, None] + (z1 - z0)[:, None] * _QZ
            for r in range(nb):
                x0, y0 = float(self._bld_qx[r, f, 0]), float(self._bld_qy[r, f, 0])
                t_x, t_y, n_x, n_y = float(tx[r]), float(ty[r]), float(fx[r]), float(fy[r])
                width, za, zb = 2.0 * float(et[r]), float(z0[r]), float(z1[r])
                self._bld_wall_c[r, f] = (x0 + t_x * 0.5 * width, y0 + t_y * 0.5 * width, 0.5 * (za + zb))
                cols = int((width - 1.0) // 2.6)
                rows = int((zb - za - 1.2) // 3.0)
                if cols < 1 or rows < 1:
                    continue
                a = 0.5 * width + (np.arange(cols) - 0.5 * (cols - 1)) * 2.6
                A, Z = np.meshgrid(a, za + 1.0 + np.arange(rows) * 3.0)
                A, Z = A.ravel(), Z.ravel()
                ox, oy = x0 + n_x * 0.03, y0 + n_y * 0.03  # just in front of the wall
                da = A[:, None] + 0.6 * _QX
                lit = np.random.default_rng((self.seed, int(bi[r]) * 8 + f)).random(len(A)) < 0.3
                self._bld_windows[r][f] = (ox + t_x * da, oy + t_y * da, Z[:, None] + 1.4 * _QZ, lit)
                self._bld_win_n[r, f] = len(A)
        lx, ly = _BOX_LX[None, :] * hl[:, None], _BOX_LY[None, :] * hw[:, None]
        self._bld_qx[:, 4] = x[:, None] + c[:, None] * lx - s[:, None] * ly
        self._bld_qy[:, 4] = y[:, None] + s[:, None] * lx + c[:, None] * ly
        self._bld_qz[:, 4] = z1[:, None]

    # ======================================================================
    # setup: everything that depends on the weather
    # ======================================================================
    def set_weather(self, weather) -> None:
        """Switch the weather (recomputes the precomputed images; a few ms)."""
        w = resolve_weather(weather)
        self.weather = w
        cam = self.camera
        # Ground colours are pre-lit by daylight; with headlights the per-pixel gain does the lighting.
        self._palette_light = (1.0, 1.0, 1.0) if w.headlights else w.ground_light
        wet = w.wetness
        pl = self._palette_light

        def lit(rgb, wet_gain=1.0):
            g = 1.0 - (1.0 - wet_gain) * wet
            return _scale(rgb, (pl[0] * g, pl[1] * g, pl[2] * g))

        grass = self.road.verge == "grass"
        terrain, tpatch = (GRASS, GRASS_PATCHES) if grass else (DIRT, DIRT_PATCHES)
        self._col: Dict[str, RGB] = {
            "asphalt": lit(ASPHALT, 0.55),
            "track": lit(ASPHALT_TRACK, 0.5),
            "patch0": lit(ASPHALT_PATCHES[0], 0.55),
            "patch1": lit(ASPHALT_PATCHES[1], 0.55),
            "shoulder": lit(SHOULDER, 0.6),
            "curb": lit(CURB, 0.7),
            "sidewalk": lit(SIDEWALK, 0.7),
            "terrain": lit(terrain, 0.85),
            "tpatch0": lit(tpatch[0], 0.85),
            "tpatch1": lit(tpatch[1], 0.85),
            "gravel": lit(GRAVEL_EDGE if grass else DIRT_PATCHES[0], 0.75),
            # Paint keeps more of its brightness when wet: it is raised and retro-reflective.
            "mark_w": lit(MARK_WHITE, 0.85),
            "mark_y": lit(MARK_YELLOW, 0.85),
        }
        # Mark colours at each fade level, blended toward the asphalt.
        self._mark_levels = {
            yellow: [_mix(self._col["asphalt"], self._col["mark_y" if yellow else "mark_w"], k / MARK_LEVELS)
                     for k in range(MARK_LEVELS + 1)] for yellow in (False, True)}
        # Distances where dashes give way to a faint continuous line (period below 8, then 3 px).
        fh = cam.focal_px * cam.height_m * DASH_PERIOD_M
        self._dash_fade_m = (math.sqrt(fh / 8.0), math.sqrt(fh / 3.0))
        # Beyond twice the fade end a dash covers under a pixel (its label too): it is not drawn.
        self._dash_reach_m = 2.0 * self._dash_fade_m[1] + DASH_M + self.road.left_edge_t - self.road.right_edge_t
        # Shadow gains: a sun shadow leaves only the ambient light; contact shadows under cars are darker.
        sg = w.shadow_gain if w.casts_shadows else (1.0, 1.0, 1.0)
        self._shadow_rgb = tuple(int(round(255 * min(1.0, g))) for g in sg) if w.casts_shadows else None
        contact = 0.5 if w.casts_shadows else (0.6 if not w.is_dark else 0.8)
        self._contact_rgb = tuple(int(round(255 * contact * min(1.0, g + 0.2))) for g in sg)
        self._build_background()
        self._build_post()
        self._build_glare()
        self._build_rain()
        # Beyond where fog leaves 1 % of an object's own colour it is invisible: skip it.
        self._object_view_m = min(OBJECT_VIEW_M, self.view_m,
                                  w.fog_start_m + math.log(100.0) / w.fog_extinction_per_m)
        # Per-frame constants of the light, as arrays.
        self._amb_obj = np.array(w.ambient_rgb) * 0.85  # vertical surfaces see about 85 % of the sky
        self._fog_rgb = np.array(w.fog_rgb, np.float64)
        self._sun_rgb = np.array(w.sun_rgb) if w.sun_elevation_deg > 0 else np.zeros(3)
        self._sunny = float(self._sun_rgb.max()) > 0.15
        sx, sy, sz = w.sun_direction
        self._bld_cos_sun = np.where(self._bld_nz > 0, max(0.0, sz),
                                     np.maximum(0.0, self._bld_nx * sx + self._bld_ny * sy))
        sx, sy, sz = w.sun_direction
        horiz = max(math.hypot(sx, sy), 1e-6)
        # Shadows point away from the sun; a low sun's are long (capped: they leave the view anyway).
        reach = min(horiz / max(sz, 1e-3), 12.0)
        self._shadow_dir = (-sx / horiz, -sy / horiz, reach)
        self._build_static_shadows()
        self._shadow_reach_m = 10.0 * reach + 5.0  # how far from its foot a shadow can end
        # Beyond this a 4 m deep shadow is under a fifth of a pixel tall (focal * height * 4 / d^2): skip it.
        self._shadow_view_m = min(self._object_view_m, float(np.clip(math.sqrt(cam.focal_px * cam.height_m * 30.0),
                                                                     30.0, 120.0)))
        log.debug("renderer %dx%d weather %s: view %.0f m, objects %.0f m, %d samples", self.width_px,
                  self.height_px, w.name, self.view_m, self._object_view_m, self._n_samples)

    def _build_static_shadows(self) -> None:
        """World outlines (8 vertices) of the static objects' sun shadows: two slots per object.

        Trees: the crown's shadow (an ellipse stretched away from the sun) and,
        where that does not cover the foot, the trunk's strip; poles and signs:
        a strip; buildings: the footprint swept along the shadow.
        """
        n = len(self._objects)
        self._static_shadow_x = np.zeros((2 * n, 8))
        self._static_shadow_y = np.zeros((2 * n, 8))
        self._static_shadow_ok = np.zeros(2 * n, bool)
        if n == 0 or self._shadow_rgb is None:
            return
        dx, dy, reach = self._shadow_dir
        ox, oy = self._obj_xy[:, 0], self._obj_xy[:, 1]
        L, Wd, Ht = self._obj_dims.T
        kind = self._obj_kind
        sx, sy, ok = self._static_shadow_x, self._static_shadow_y, self._static_shadow_ok
        tree = kind == _TREE
        rv, rh = 0.36 * Ht, 0.5 * Wd
        lc = (Ht - rv) * reach  # foot to the crown shadow's centre
        ra = rh + rv * reach  # its half-length
        along = ra[:, None] * _RING_COS
        across = rh[:, None] * _RING_SIN
        cx, cy = ox + dx * lc, oy + dy * lc
        sx[0::2][tree] = (cx[:, None] + dx * along - dy * across)[tree]
        sy[0::2][tree] = (cy[:, None] + dy * along + dx * across)[tree]
        ok[0::2][tree] = True
        # Strips from the foot along the shadow: trunks not covered by their crown's shadow, poles, signs.
        strip = ((kind == _POLE) | (kind == _SIGN)) | (tree & (lc - ra > 0.3))
        half = np.where(tree, 0.15, 0.08)
        length = np.where(tree, 0.7 * Ht, Ht) * reach
        px, py = -dy * half, dx * half
        qx = np.stack([ox + px, ox + px + dx * length, ox - px + dx * length, ox - px], 1).repeat(2, axis=1)
        qy = np.stack([oy + py, oy + py + dy * length, oy - py + dy * length, oy - py], 1).repeat(2, axis=1)
        slot = np.where(tree, 1, 0)
        for k in (0, 1):
            m = strip & (slot == k)
            sx[k::2][m] = qx[m]
            sy[k::2][m] = qy[m]
            ok[k::2][m] = True
        bld = kind == _BUILDING
        if bld.any():
            hx, hy = _swept_boxes(ox[bld], oy[bld], self._obj_yaw[bld], L[bld], Wd[bld], dx * reach * Ht[bld],
                                  dy * reach * Ht[bld])
            sx[0::2][bld] = hx
            sy[0::2][bld] = hy
            ok[0::2][bld] = True

    def _sky_rgb(self, elevation_rad: np.ndarray) -> np.ndarray:
        """Sky colour for view elevations (radians above the horizon); ``(N, 3)`` float."""
        w = self.weather
        e = np.degrees(np.maximum(elevation_rad, 0.0))
        k = np.clip(e / 40.0, 0.0, 1.0) ** 0.55
        top = np.array(w.sky_top_rgb, np.float64)
        hor = np.array(w.sky_horizon_rgb, np.float64)
        sky = hor + (top - hor) * k[:, None]
        # Fog hides the gradient; the lowest degrees melt into the haze colour.
        fogk = min(1.0, 1.6 * w.fog_density ** 0.8)
        low = np.exp(-e / 1.2)[:, None] * 0.6
        fog = np.array(w.fog_rgb, np.float64)
        return sky + (fog - sky) * np.clip(fogk + low * (1 - fogk), 0.0, 1.0)

    def _build_background(self) -> None:
        cam, w = self.camera, self.weather
        H, W = self.height_px, self.width_px
        hr = cam.horizon_row
        v = np.arange(H, dtype=np.float64) + 0.5
        elev = cam.pitch_rad + np.arctan((cam.cy_px - v) / cam.focal_px)
        bg = np.empty((H, W, 3), np.uint8)
        bg[:hr] = np.clip(np.rint(self._sky_rgb(elev)[:hr]), 0, 255).astype(np.uint8)[:, None, :]
        bg[hr:] = np.array(self._col["terrain"], np.uint8)
        self._bg_rgb = bg
        self._build_clouds(elev[:hr])
        sem = np.full((H, W), _TERRAIN, np.uint8)
        sem[:hr] = _SKY
        self._bg_sem = sem
        # Distant hills: a silhouette over world azimuth (fixed by the seed), hazy and low.
        rng = np.random.default_rng((self.seed, 31337))
        az = np.linspace(0.0, 2.0 * np.pi, 2048, endpoint=False)
        e = np.full_like(az, 0.55)
        for k in range(1, 9):
            e += (0.55 / k ** 0.9) * np.sin(k * az + rng.uniform(0, 2 * np.pi))
        e += 0.18 * np.abs(np.sin(23.0 * az + rng.uniform(0, 2 * np.pi))) + 0.08 * np.sin(61.0 * az)
        self._hills_az = az
        self._hills_elev_rad = np.radians(np.clip(e, 0.05, 2.2) * 0.9)
        hill_fog = min(1.0, 0.55 + 0.9 * w.fog_density)
        self._hills_rgb = _mix(_scale(HILLS, w.ground_light), w.fog_rgb, hill_fog)
        self._hills_visible = hill_fog < 0.97
        # The plain ends where the hills stand, so the ground's haze stops at theirs: land meets sky
        # in the hills' colour rather than with a sky-coloured seam.
        self._ground_fog_cap = hill_fog if self._hills_visible else 1.0
        step = max(3.0, W / 90.0)
        self._hills_u = np.concatenate([np.arange(-2.0, W + 2.0, step), [W + 2.0]])

    def _build_clouds(self, elev_rad: np.ndarray) -> None:
        """A 360-degree panorama of the sky rows with clouds, sliced by the heading each frame.

        Clouds lie on a plane 1.5 km up: a ray of elevation e and azimuth a meets
        it at horizontal distance 1500 / tan(e), where a tileable noise texture
        (seeded) gives the cloud density, so clouds shrink toward the horizon as
        real ones do and turn with the car. ``cloudiness`` sets the cover. The
        panorama is cylindrical (one column per 1/focal radian), so a frame's sky
        is one contiguous slice: exact at the image centre, and clouds near the
        edges sit a little off their true azimuth, which soft clouds hide.

        Args:
            elev_rad: ``(hr,)`` elevation of each sky row at the image centre.
        """
        w, cam = self.weather, self.camera
        self._sky_pano = None
        hr = len(elev_rad)
        if hr == 0 or w.cloudiness < 0.05 or w.fog_density > 0.4:
            return
        P = int(round(2.0 * math.pi * cam.focal_px))  # one panorama column per image pixel at the centre
        rng = np.random.default_rng((self.seed, 271828))
        size = 256
        tex = np.zeros((size, size), np.float32)
        for cells, weight in ((4, 1.0), (8, 0.5), (16, 0.25), (32, 0.125), (64, 0.06)):
            grid = rng.random((cells, cells)).astype(np.float32)
            # Wrap the grid so the texture tiles, then upsample smoothly.
            big = cv2.resize(np.pad(grid, 2, mode="wrap"), ((cells + 4) * size // cells,) * 2,
                             interpolation=cv2.INTER_CUBIC)
            o = 2 * size // cells
            tex += weight * big[o:o + size, o:o + size]
        tex = (tex - tex.min()) / max(float(tex.max() - tex.min()), 1e-6)
        e = np.maximum(elev_rad, math.radians(0.3))[:, None]
        a = -np.arange(P, dtype=np.float64)[None, :] * (2.0 * math.pi / P)  # azimuth falls to the right
        dist_km = 1.5 / np.tan(e)
        scale = size / 12.0  # texture pixels per km: cloud cells a few km across
        map_x = (dist_km * np.cos(a) * scale).astype(np.float32)
        map_y = (dist_km * np.sin(a) * scale).astype(np.float32)
        noise = cv2.remap(tex, map_x % size, map_y % size, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        th = 1.0 - w.cloudiness
        cover = _smoothstep((noise - th + 0.12) / 0.3) * min(1.0, 0.3 + w.cloudiness)
        # Far clouds melt into the haze near the horizon.
        cover *= 1.0 - np.exp(-np.degrees(e) / 2.5)
        sky = self._sky_rgb(elev_rad)[:, None, :]
        light = max(w.ground_light)
        lit = np.array([255.0, 255.0, 255.0]) * min(1.0, 0.25 + 0.75 * light)
        if w.glare > 0:
            lit = lit * np.array([1.0, 0.78, 0.62])  # sunset clouds glow warm
        # Thicker parts of a cloud are greyer underneath.
        body = lit * (0.95 - 0.35 * _smoothstep((noise - th) / 0.5))[..., None]
        cloud = body * 0.8 + sky * 0.2
        pano = sky + (cloud - sky) * cover[..., None]
        pano = np.clip(np.rint(pano), 0, 255).astype(np.uint8)
        # Repeated past its end by an image width: every slice is contiguous (a very wide lens sees
        # more than the whole circle).
        reps = 2 + self.width_px // P
        self._sky_pano = np.ascontiguousarray(np.tile(pano, (1, reps, 1))[:, :P + self.width_px])
        self._sky_period = P

    def _headlight_light(self, fwd_m: np.ndarray, left_m: np.ndarray) -> np.ndarray:
        """Ego headlight illuminance (0..~1) at ground offsets from the camera (forward, left; metres).

        Per lamp: a beam that spreads wide close to the car and narrows with
        distance, rising within the first metres and fading past ~45 m (the low
        beam's cut-off), aimed slightly right (the kerb side in right-hand traffic).
        """
        cam = self.camera
        x = fwd_m + cam.mount_forward_m - LAMP_FORWARD_M
        total = np.zeros(np.shape(x))
        for lamp_left in (LAMP_HALF_SPACING_M, -LAMP_HALF_SPACING_M):
            y = left_m + cam.mount_left_m - lamp_left
            r = np.hypot(x, y)
            phi = np.arctan2(y, np.maximum(x, 1e-3)) + 0.05
            spread = 0.32 + 0.5 * np.exp(-r / 7.0) + np.where(phi < 0, 0.08, 0.0)
            cone = np.exp(-(phi / spread) ** 2) * (x > 0)
            reach = (1.0 - 0.7 * np.exp(-(r / 1.5) ** 2)) * np.exp(-(r / 45.0) ** 2)
            total = total + 0.55 * cone * reach
        return total

    def _build_post(self) -> None:
        """Per-pixel ground light and fog: ``out = img * G / 255 + A`` on rows ``[r0, r1)``."""
        cam, w = self.camera, self.weather
        H, W = self.height_px, self.width_px
        hr = cam.horizon_row
        fwd, left, rng_m = cam.pixel_rays()
        fwd, left, rng_m = fwd[hr:], left[hr:], rng_m[hr:]
        finite = np.isfinite(rng_m)
        d = np.where(finite, rng_m, 1e9)
        f = np.minimum(np.where(finite, w.fog_fraction(d), 1.0), self._ground_fog_cap)
        if w.headlights:
            e = self._headlight_light(np.where(finite, fwd, 1e9), np.where(finite, left, 0.0))
            light = np.array(w.ambient_rgb)[None, None, :] + (w.headlight_gain * e)[..., None] * \
                np.array([1.0, 0.97, 0.9])
            gain = np.clip(light / np.array(self._palette_light), 0.0, 1.0)
        else:
            gain = np.ones((H - hr, W, 3))
        G = gain * (1.0 - f[..., None])
        A = np.array(w.fog_rgb, np.float64) * f[..., None]
        # Only rows where the transform changes something are processed each frame.
        changes = (np.abs(G - 1.0) > 0.5 / 255.0).any(axis=(1, 2)) | (A > 0.5).any(axis=(1, 2))
        rows = np.nonzero(changes)[0]
        r0 = hr + (int(rows.min()) if rows.size else 0)
        r1 = hr + (int(rows.max()) + 1 if rows.size else 0)
        self._post_rows = (r0, max(r0, r1))
        sl = slice(r0 - hr, r1 - hr)
        self._post_G = np.clip(np.rint(G[sl] * 255.0), 0, 255).astype(np.uint8)
        self._post_A = np.clip(np.rint(A[sl]), 0, 255).astype(np.uint8)
        # Wet asphalt mirrors the sky, more at grazing angles (Schlick's Fresnel term).
        self._sheen = None
        if w.wetness > 0.05:
            cos_i = np.clip(np.where(finite, cam.height_m / np.maximum(d, 1e-6), 1.0), 0.0, 1.0)
            fres = 0.04 + 0.96 * (1.0 - cos_i) ** 5
            refl = np.array(w.sky_horizon_rgb, np.float64) * 0.5 * w.wetness
            sheen = fres[..., None] * refl * (1.0 - f[..., None])
            self._sheen = np.clip(np.rint(sheen), 0, 255).astype(np.uint8)

    def _build_glare(self) -> None:
        """An additive glow sprite around a low sun (sunset), placed each frame at the sun."""
        w = self.weather
        self._glare = None
        if w.glare <= 0.0 or w.sun_elevation_deg < -2.0:
            return
        H, W = self.height_px, self.width_px
        r = int(max(8, 0.6 * max(W, H)))
        y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
        rr = np.hypot(x, y) / max(W, H)
        glow = 0.55 * np.exp(-(rr / 0.07) ** 2) + 0.35 * np.exp(-(rr / 0.25) ** 2)
        # A faint horizontal streak, as a windscreen and lens smear a low sun.
        glow += 0.18 * np.exp(-(np.abs(y) / (0.012 * max(W, H))) ** 2) * np.exp(-(np.abs(x) / (0.45 * W)) ** 2)
        tint = np.array([255.0, 196.0, 120.0]) * w.glare
        self._glare = np.clip(np.rint(glow[..., None] * tint), 0, 255).astype(np.uint8)
        self._sun_radius_px = max(1.5, 0.012 * W)

    # ======================================================================
    # per frame
    # ======================================================================
    def render(self, vehicle_x_m: float, vehicle_y_m: float, vehicle_yaw_rad: float, s_hint_m: float,
               vehicles: Sequence[VehicleBox] = (), frame: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """Draw one frame.

        Args:
            vehicle_x_m, vehicle_y_m, vehicle_yaw_rad: the ego's pose (OpenDRIVE frame,
                vehicle centre on the ground, yaw counter-clockwise from +x).
            s_hint_m: the ego's position along the reference line; the road is
                sampled from ``s_hint_m - 80`` m to the view distance ahead of it.
            vehicles: other vehicles as boxes.
            frame: frame number; seeds the rain streaks.

        Returns:
            ``(rgb, semantic)``: ``(H, W, 3)`` uint8 RGB and ``(H, W)`` uint8
            :class:`~carla_agent.sim.observation.SemanticClass` labels, aligned pixel
            for pixel. Fresh arrays each call.
        """
        cam = self.camera
        yaw = float(vehicle_yaw_rad)
        cam.set_pose(float(vehicle_x_m), float(vehicle_y_m), yaw)
        rgb = self._bg_rgb.copy()
        sem = self._bg_sem.copy()
        hr = cam.horizon_row
        s_hint = float(s_hint_m)
        if hr > 0:
            if self._sky_pano is not None:
                # Column j of the panorama looks toward azimuth -2 pi j / P; image column u toward
                # yaw - (u + 0.5 - cx) / focal.
                P = self._sky_period
                start = int(round(0.5 - self.camera.cx_px - yaw * P / (2.0 * math.pi))) % P
                rgb[:hr] = self._sky_pano[:, start:start + self.width_px]
            self._draw_hills(rgb[:hr], sem[:hr], yaw)
        objs, casting, depth, rng_m = self._frame_objects(s_hint)
        veh = self._vehicles_in_view(vehicles)
        if hr < self.height_px:
            # The ground goes into the rows below the horizon only: none of it can leak into the sky.
            ground_rgb, ground_sem = rgb[hr:], sem[hr:]
            self._draw_ground(ground_rgb, ground_sem, s_hint, hr)
            if veh is not None or len(casting):
                self._apply_shadows(ground_rgb, hr, casting, veh)
            self._apply_post(ground_rgb, ground_sem, hr)
        if self._glare is not None:
            self._draw_sun(rgb)
        self._draw_things(rgb, sem, objs, depth, rng_m, veh)
        if self._glare is not None:
            self._apply_glare(rgb)
        if self.weather.rain > 0.0:
            self._draw_rain(rgb, frame)
        return rgb, sem

    # -- clipping and projection ---------------------------------------------
    def _clip_polys(self, d: np.ndarray, r: np.ndarray, u: np.ndarray, nxt: np.ndarray, pid: np.ndarray,
                    n: int, row0: int = 0) -> List[Optional[np.ndarray]]:
        """Clip polygons against the near plane and project them.

        Args:
            d, r, u: ``(V,)`` camera coordinates (depth, right, up; metres) of the
                vertices of all polygons, laid out as by :func:`_layout`.
            nxt, pid, n: the layout's successor positions, polygon ids and count.
            row0: the target image starts at this image row (a sub-image).

        Returns:
            For each polygon, an ``(k, 2)`` int32 array of fixed-point vertices
            (``SHIFT`` bits), or None when it is behind the camera or degenerate.
            (Polygons off screen are left to OpenCV, which rejects them quickly.)
        """
        if n == 0:
            return []
        near = NEAR_CLIP_M
        inside = d > near
        if inside.all():
            D, R, U, P = d, r, u, pid
        else:
            # Sutherland-Hodgman, vectorised: each edge emits its start vertex when
            # inside and its crossing with the near plane when it crosses.
            dn = d[nxt]
            cross = inside != (dn > near)
            k = (near - d) / np.where(cross, dn - d, 1.0)
            V = len(d)
            D = np.empty((V, 2))
            R = np.empty((V, 2))
            U = np.empty((V, 2))
            D[:, 0], D[:, 1] = d, near
            R[:, 0], R[:, 1] = r, r + k * (r[nxt] - r)
            U[:, 0], U[:, 1] = u, u + k * (u[nxt] - u)
            valid = np.empty((V, 2), bool)
            valid[:, 0], valid[:, 1] = inside, cross
            valid = valid.ravel()
            D, R, U = D.ravel()[valid], R.ravel()[valid], U.ravel()[valid]
            P = pid.repeat(2)[valid]
        cam = self.camera
        inv = cam.focal_px / D
        x = (cam.cx_px - 0.5) + R * inv
        y = (cam.cy_px - 0.5 - row0) - U * inv
        counts = np.bincount(P, minlength=n)
        ends = counts.cumsum()
        starts = ends - counts
        good = counts >= 3
        pts = np.empty((len(x), 2), np.int32)
        pts[:, 0] = np.rint(x * _ONE)
        pts[:, 1] = np.rint(y * _ONE)
        out = [pts[a:b] for a, b in zip(starts.tolist(), ends.tolist())]
        if not good.all():
            for i in np.flatnonzero(~good).tolist():
                out[i] = None
        return out

    # -- sky -------------------------------------------------------------------
    def _draw_hills(self, rgb: np.ndarray, sem: np.ndarray, yaw: float) -> None:
        """The distant skyline: one polygon over the columns, at world azimuths of the heading."""
        if not self._hills_visible:
            return
        cam = self.camera
        u = self._hills_u
        phi = np.arctan((u - cam.cx_px) / cam.focal_px * math.cos(cam.pitch_rad))  # right of the heading
        # The table is uniform in azimuth: interpolate by index (np.interp with a period sorts every call).
        table = self._hills_elev_rad
        pos = np.mod(yaw - phi, 2.0 * np.pi) * (len(table) / (2.0 * np.pi))
        i0 = pos.astype(np.int64)
        frac = pos - i0
        e = table[i0 % len(table)] * (1.0 - frac) + table[(i0 + 1) % len(table)] * frac
        # Direction with elevation e at horizontal angle phi, in camera coordinates.
        cp, sp = math.cos(cam.pitch_rad), math.sin(cam.pitch_rad)
        fwd_h, se = np.cos(e) * np.cos(phi), np.sin(e)
        v = cam.cy_px - cam.focal_px * (-fwd_h * sp + se * cp) / (fwd_h * cp + se * sp)
        bottom = cam.horizon_v_px + 1.0
        pts = np.empty((len(u) + 2, 2))
        pts[:-2, 0], pts[:-2, 1] = u, v
        pts[-2] = (u[-1], bottom)
        pts[-1] = (u[0], bottom)
        poly = [np.rint((pts - 0.5) * _ONE).astype(np.int32)]
        cv2.fillPoly(rgb, poly, self._hills_rgb, _AA, SHIFT)
        cv2.fillPoly(sem, poly, _TERRAIN, _HARD, SHIFT)

    def _sun_uv(self) -> Optional[Tuple[float, float]]:
        sx, sy, sz = self.weather.sun_direction
        o = self.camera._o
        d, r, u = self.camera.to_camera(o[0] + sx, o[1] + sy, o[2] + sz)
        if d <= 0.05:
            return None
        uu, vv = self.camera.image_from_camera(d, r, u)
        return float(uu), float(vv)

    def _draw_sun(self, rgb: np.ndarray) -> None:
        uv = self._sun_uv()
        if uv is None or uv[1] > self.camera.horizon_v_px:
            return
        c = (int(round((uv[0] - 0.5) * _ONE)), int(round((uv[1] - 0.5) * _ONE)))
        col = _mix(self.weather.sky_horizon_rgb, (255, 244, 214), 0.85)
        cv2.circle(rgb, c, int(self._sun_radius_px * _ONE), col, -1, _AA, SHIFT)

    def _apply_glare(self, rgb: np.ndarray) -> None:
        uv = self._sun_uv()
        if uv is None:
            return
        H, W = self.height_px, self.width_px
        g = self._glare
        r = g.shape[0] // 2
        x0, y0 = int(round(uv[0])) - r, int(round(uv[1])) - r
        ax0, ay0 = max(0, x0), max(0, y0)
        ax1, ay1 = min(W, x0 + g.shape[1]), min(H, y0 + g.shape[0])
        if ax0 >= ax1 or ay0 >= ay1:
            return
        roi = rgb[ay0:ay1, ax0:ax1]
        cv2.add(roi, g[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0], dst=roi)

    # -- ground ----------------------------------------------------------------
    def _draw_ground(self, rgb: np.ndarray, sem: np.ndarray, s_hint: float, row0: int) -> None:
        """Road surfaces, textures and marks into the ground rows (``rgb``/``sem`` start at ``row0``).

        Every polygon of the ground (strips, mark runs, dashes, patches) goes
        through one clipping and projection call; the per-frame Python work is a
        fixed number of vectorised steps, whatever the number of polygons.
        """
        road, cam = self.road, self.camera
        n = self._n_samples
        # All reference-line lookups of the frame in one call: grid samples, dash ends, patch corners.
        s_grid = s_hint + self._s_offsets_m  # np.interp clamps to the road's ends
        dash_k = self._dash_indices(s_hint)
        s_dash = (dash_k[:, None] * DASH_PERIOD_M + _DASH_PIECES).ravel()
        patches = self._patches[np.searchsorted(self._patches[:, 0], s_hint - 10.0):
                                np.searchsorted(self._patches[:, 0], s_hint + self._patch_view_m)]
        s_patch = patches[:, [0, 1, 1, 0]].ravel()
        s_all = np.concatenate([s_grid, s_dash, s_patch])
        x, y, cs, sn = (np.interp(s_all, self._ref_s, self._ref_x), np.interp(s_all, self._ref_s, self._ref_y),
                        np.interp(s_all, self._ref_s, self._ref_cos), np.interp(s_all, self._ref_s, self._ref_sin))
        n_dash_s, n_patch = len(s_dash), len(patches)
        # Lateral offsets: grid lines x samples, dash edges x dash samples, patch corners.
        g = slice(0, n)
        t = self._t_m[:, None]
        parts_x = [(x[g] - t * sn[g]).ravel()]
        parts_y = [(y[g] + t * cs[g]).ravel()]
        if n_dash_s:
            dsl = slice(n, n + n_dash_s)
            td = self._dash_t[:, None]
            parts_x.append((x[dsl] - td * sn[dsl]).ravel())
            parts_y.append((y[dsl] + td * cs[dsl]).ravel())
        if n_patch:
            psl = slice(n + n_dash_s, None)
            tp = patches[:, [2, 2, 3, 3]].ravel()
            parts_x.append(x[psl] - tp * sn[psl])
            parts_y.append(y[psl] + tp * cs[psl])
        X, Y = np.concatenate(parts_x), np.concatenate(parts_y)
        D, R, U = cam.to_camera(X, Y, 0.0)
        # Polygon layouts: the static strips, then mark runs, dashes and patches.
        vidx, nxt, pid = [self._static_vidx], [self._static_nxt], [self._static_pid]
        n_poly = self._n_static
        marks = self._mark_run_layout(D[:self._t_m.size * n], n, n_poly)
        if marks is not None:
            vidx.append(marks[0])
            nxt.append(marks[1])
            pid.append(marks[2])
            first_mark, n_mark = n_poly, len(marks[3])
            n_poly += n_mark
        base = self._t_m.size * n
        n_lines = len(self._dash_width)
        n_dash = len(dash_k)
        first_dash = n_poly
        if n_dash_s:
            # Each dash: its left edge forward, its right edge back (8 vertices).
            ids = base + np.arange(2 * n_lines * n_dash_s).reshape(n_lines, 2, n_dash, 4)
            blk = np.concatenate([ids[:, 0], ids[:, 1, :, ::-1]], axis=2).reshape(-1, 8)
            self._append_block(blk, n_poly, vidx, nxt, pid)
            n_poly += len(blk)
            base += 2 * n_lines * n_dash_s
        first_patch = n_poly
        if n_patch:
            blk = base + np.arange(4 * n_patch).reshape(-1, 4)
            self._append_block(blk, n_poly, vidx, nxt, pid)
            n_poly += n_patch
        vi = np.concatenate(vidx)
        out = self._clip_polys(D[vi], R[vi], U[vi], np.concatenate(nxt), np.concatenate(pid), n_poly, row0)
        col = self._col
        if n_patch:
            kinds = patches[:, 4].astype(np.int64).tolist()
            pp = out[first_patch:first_patch + n_patch]
            by_kind: Dict[int, List[np.ndarray]] = {}
            for p, k in zip(pp, kinds):
                if p is not None:
                    by_kind.setdefault(k, []).append(p)
        # Verge patches lie under everything else; asphalt patches go right on the asphalt.
        for k, name in ((2, "tpatch0"), (3, "tpatch1")):
            if n_patch and k in by_kind:
                cv2.fillPoly(rgb, by_kind[k], col[name], _HARD, SHIFT)
        for name, ids_, aa, label in self._surfaces:
            sel = [out[i] for i in ids_ if out[i] is not None]
            if not sel:
                continue
            cv2.fillPoly(rgb, sel, col[name], _AA if aa else _HARD, SHIFT)
            if label is not None:
                cv2.fillPoly(sem, sel, label, _HARD, SHIFT)
            if name == "asphalt" and n_patch:
                for k, pname in ((0, "patch0"), (1, "patch1")):
                    if k in by_kind:
                        cv2.fillPoly(rgb, by_kind[k], col[pname], _HARD, SHIFT)
        # Marks: labels for every painted piece, colours by fade level.
        labelled: List[np.ndarray] = []
        by_colour: Dict[Tuple[bool, int], List[np.ndarray]] = {}
        if marks is not None:
            for p, yellow, level, lab in zip(out[first_mark:first_mark + n_mark], marks[3], marks[4], marks[5]):
                if p is None:
                    continue
                if lab:
                    labelled.append(p)
                if level > 0:
                    by_colour.setdefault((yellow, level), []).append(p)
        if n_dash_s:
            dd = D[self._t_m.size * n:self._t_m.size * n + 2 * n_lines * n_dash_s].reshape(n_lines, 2, n_dash, 4)
            depth = np.maximum(dd.mean(axis=(1, 3)), NEAR_CLIP_M)  # (lines, dashes)
            wpx = cam.focal_px * self._dash_width[:, None] / depth
            d1, d2 = self._dash_fade_m
            alpha = wpx / (wpx + MARK_SOFTNESS_PX) * (1.0 - _smoothstep((depth - d1) / (d2 - d1)))
            levels = np.minimum(np.rint(alpha * MARK_LEVELS).astype(np.int64), MARK_LEVELS).ravel().tolist()
            yellow = np.repeat(self._dash_yellow, n_dash).tolist()
            for p, lv, yl in zip(out[first_dash:first_dash + n_lines * n_dash], levels, yellow):
                if p is None:
                    continue
                labelled.append(p)
                if lv > 0:
                    by_colour.setdefault((yl, lv), []).append(p)
        for (yellow, level), sel in sorted(by_colour.items(), key=itemgetter(0)):
            cv2.fillPoly(rgb, sel, self._mark_levels[yellow][level], _AA, SHIFT)
        if labelled:
            cv2.fillPoly(sem, labelled, _MARK, _HARD, SHIFT)

    @staticmethod
    def _append_block(blk: np.ndarray, first_id: int, vidx: list, nxt: list, pid: list) -> None:
        """Append ``(m, k)`` polygons of k vertices each to a flat layout (see :func:`_layout`)."""
        m, k = blk.shape
        start = sum(len(v) for v in vidx)
        vidx.append(blk.ravel())
        nx_ = np.arange(start + 1, start + m * k + 1)
        nx_[k - 1::k] -= k
        nxt.append(nx_)
        pid.append(np.repeat(np.arange(first_id, first_id + m), k))

    def _mark_run_layout(self, D: np.ndarray, n: int, first_id: int):
        """Polygons for every run of equal fade level along every mark line, vectorised.

        Solid lines fade with their projected width; broken lines get, beyond the
        distance where dashes would flicker, a faint continuous line of the
        dashes' average brightness (no label: the dashes carry the labels).

        Args:
            D: ``(offsets * n,)`` depths of the grid points.
            first_id: polygon id of the first run.

        Returns:
            None, or ``(vidx, nxt, pid, yellow, level, labelled)``: the runs' layout
            (positions continue after the static strips) and per-run attribute lists.
        """
        if len(self._line_edges) == 0:
            return None
        cam = self.camera
        d = D.reshape(-1, n)[self._line_edges[:, 0]]
        seg_depth = np.maximum(0.5 * (d[:, 1:] + d[:, :-1]), NEAR_CLIP_M)  # (lines, n - 1)
        wpx = cam.focal_px * self._line_width[:, None] / seg_depth
        alpha = wpx / (wpx + MARK_SOFTNESS_PX)
        if self._any_broken:
            d1, d2 = self._dash_fade_m
            faint = (DASH_M / DASH_PERIOD_M) * _smoothstep((seg_depth - d1) / (d2 - d1))
            alpha = np.where(self._line_broken[:, None], alpha * faint, alpha)
        levels = np.minimum(np.rint(alpha * MARK_LEVELS).astype(np.int64), MARK_LEVELS)
        n_lines, n_seg = levels.shape
        # Run starts: segment 0 of every line, and every segment whose level differs from the previous.
        change = np.ones((n_lines, n_seg), bool)
        change[:, 1:] = levels[:, 1:] != levels[:, :-1]
        line, i0 = np.nonzero(change)
        i1 = np.empty_like(i0)  # last segment of each run
        i1[:-1] = i0[1:] - 1
        i1[-1] = n_seg - 1
        i1[:-1][line[1:] != line[:-1]] = n_seg - 1  # a line's last run ends at its last segment
        level = levels[line, i0]
        keep = ~(self._line_broken[line] & (level == 0))  # a faint line at level 0 draws nothing
        line, i0, i1, level = line[keep], i0[keep], i1[keep], level[keep]
        if len(line) == 0:
            return None
        # Run r covers samples i0..i1+1: edge a forward, edge b back.
        length = i1 - i0 + 2
        a = self._line_edges[line, 0] * n + i0
        b = self._line_edges[line, 1] * n + i1 + 1
        total = 2 * length
        ends = total.cumsum()
        starts = ends - total
        pos = np.arange(int(ends[-1]))
        run = np.repeat(np.arange(len(line)), total)
        off = pos - starts[run]
        first_half = off < length[run]
        vidx = np.where(first_half, a[run] + off, b[run] - (off - length[run]))
        base = self._static_vidx.size
        nxt = base + pos + 1
        nxt[ends - 1] = base + starts
        pid = first_id + run
        return (vidx, nxt, pid, self._line_yellow[line].tolist(), level.tolist(),
                (~self._line_broken[line]).tolist())

    def _dash_indices(self, s_hint: float) -> np.ndarray:
        """Numbers k of the dashes (at s = 12 k .. 12 k + 3) that can cover a pixel.

        Candidates lie between the sampled range's ends; of those only dashes
        in front of the camera and within twice the fade distance of it are
        kept (farther, a dash is under a pixel and the faint continuous line
        stands for it). The test is by straight-line distance, so the far leg
        of a hairpin keeps its dashes.
        """
        if len(self._dash_t) == 0:
            return np.zeros(0)
        lo = s_hint + self._s_offsets_m[0]
        hi = s_hint + self.view_m
        k = np.arange(math.ceil((lo - DASH_M) / DASH_PERIOD_M), math.floor(hi / DASH_PERIOD_M) + 1, dtype=np.float64)
        k = k[(k * DASH_PERIOD_M >= 0.0) & (k * DASH_PERIOD_M + DASH_M <= self.road.length_m)]
        mid = k * DASH_PERIOD_M + 0.5 * DASH_M
        o = self.camera._o
        dx = np.interp(mid, self._ref_s, self._ref_x) - o[0]
        dy = np.interp(mid, self._ref_s, self._ref_y) - o[1]
        reach = self._dash_reach_m
        f = self.camera._f
        # In front of the camera (a dash half behind it still shows its front half) and near enough.
        keep = (dx * dx + dy * dy < reach * reach) & (dx * f[0] + dy * f[1] > -DASH_M)
        return k[keep]

    # -- light, shadow, fog ------------------------------------------------------
    def _apply_post(self, rgb: np.ndarray, sem: np.ndarray, row0: int) -> None:
        """Wet sheen, then ground light and fog (``rgb``/``sem`` are the ground rows from ``row0``)."""
        if self._sheen is not None:
            mask = cv2.inRange(sem, _ROAD, _SHOULDER)
            cv2.add(rgb, self._sheen, dst=rgb, mask=mask)
        r0, r1 = self._post_rows
        if r1 > r0:
            roi = rgb[r0 - row0:r1 - row0]
            cv2.multiply(roi, self._post_G, dst=roi, scale=1.0 / 255.0)
            cv2.add(roi, self._post_A, dst=roi)

    def _apply_shadows(self, rgb: np.ndarray, row0: int, objs: np.ndarray, veh: Optional["_Vehicles"]) -> None:
        """Darken the ground under shadows: a gain image over the rows they cover, one multiply.

        Args:
            rgb: the ground part of the frame, starting at image row ``row0``.
            objs: static objects that may cast a shadow into view.
            veh: the vehicles in view.
        """
        xs, ys, kinds = [], [], []
        if len(objs) and self._shadow_rgb is not None:
            # Static objects' shadows never change for a weather: precomputed, two slots per object.
            slots = (2 * objs[:, None] + _SLOT2).ravel()
            slots = slots[self._static_shadow_ok[slots]]
            xs.append(self._static_shadow_x[slots])
            ys.append(self._static_shadow_y[slots])
            kinds.append(np.zeros(len(slots), np.int64))
        if veh is not None:
            # Cars: the sun shadow (their box swept away from the sun) and the darker contact shadow.
            L, Wd = veh.length + 0.2, veh.width + 0.15
            zero = 0.0 * veh.x
            if self._shadow_rgb is not None:
                dx, dy, reach = self._shadow_dir
                k = reach * 0.8 * veh.height
                two = lambda a: np.concatenate((a, a))  # noqa: E731
                hx, hy = _swept_boxes(two(veh.x), two(veh.y), two(veh.yaw), two(L), two(Wd),
                                      np.concatenate((dx * k, zero)), np.concatenate((dy * k, zero)))
                kinds.append(np.repeat(_KIND01, len(zero)))
            else:
                hx, hy = _swept_boxes(veh.x, veh.y, veh.yaw, L, Wd, zero, zero)
                kinds.append(np.ones(len(zero), np.int64))
            xs.append(hx)
            ys.append(hy)
        if not xs:
            return
        d, r, u = self.camera.to_camera(np.concatenate(xs), np.concatenate(ys), 0.0)
        kind = np.concatenate(kinds)
        ok = d.max(axis=1) > NEAR_CLIP_M
        if not ok.all():
            d, r, u, kind = d[ok], r[ok], u[ok], kind[ok]
        n = len(kind)
        if n == 0:
            return
        nxt = np.arange(1, 8 * n + 1)
        nxt[7::8] -= 8
        out = self._clip_polys(d.ravel(), r.ravel(), u.ravel(), nxt, np.repeat(np.arange(n), 8), n, row0)
        live = [(p, k) for p, k in zip(out, kind.tolist()) if p is not None]
        if not live:
            return
        ys_ = np.concatenate([p[:, 1] for p, _ in live])
        vmin = max(0, int(ys_.min()) >> SHIFT)
        vmax = min(self.height_px - row0, (int(ys_.max()) >> SHIFT) + 2)
        if vmax <= vmin:
            return
        mask = np.full((vmax - vmin, self.width_px, 3), 255, np.uint8)
        off = np.array([0, vmin << SHIFT], np.int32)
        colours = (self._shadow_rgb, self._contact_rgb)
        fill = cv2.fillConvexPoly
        # One call per polygon: overlapping shadows must not cancel (fillPoly is even-odd).
        for p, k in live:
            fill(mask, p - off, colours[k], _AA, SHIFT)
        roi = rgb[vmin:vmax]
        cv2.multiply(roi, mask, dst=roi, scale=1.0 / 255.0)

    # -- objects and vehicles ---------------------------------------------------
    def _frame_objects(self, s_hint: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Static objects of this frame: ``(drawn, casting, depth_m, range_m)``.

        ``drawn`` are inside the view up to the object distance; ``casting`` are
        those whose shadow may reach the view (a margin wider, up to the shadow
        distance). ``depth_m``/``range_m`` belong to ``drawn``.
        """
        empty = np.zeros(0, np.int64)
        if len(self._obj_s) == 0:
            return empty, empty, np.zeros(0), np.zeros(0)
        view = self._object_view_m
        lo = int(np.searchsorted(self._obj_s, s_hint - BEHIND_M))
        hi = int(np.searchsorted(self._obj_s, s_hint + view + 30.0))
        if hi <= lo:
            return empty, empty, np.zeros(0), np.zeros(0)
        xy = self._obj_xy[lo:hi]
        d, r, _ = self.camera.to_camera(xy[:, 0], xy[:, 1], 0.0)
        rad = self._obj_radius[lo:hi]
        ar = np.abs(r)
        dp = np.maximum(d, 0.0)
        drawn = (d > -rad) & (d < view + rad) & (ar - rad < (dp + rad) * self._tan_half_fov)
        casting = empty
        if self._shadow_rgb is not None:
            m = rad + self._shadow_reach_m
            casting = lo + np.nonzero((d > -m) & (d < self._shadow_view_m) & (ar - m < (dp + m) * self._tan_half_fov))[0]
        idx = np.nonzero(drawn)[0]
        d = d[idx]
        return lo + idx, casting, d, np.hypot(d, r[idx])

    def _vehicles_in_view(self, vehicles: Sequence[VehicleBox]) -> Optional["_Vehicles"]:
        """The vehicles whose box (or contact shadow) can be in view, as arrays; None when none."""
        if not vehicles:
            return None
        cam = self.camera
        keep = []
        for v in vehicles:
            d, r, _ = cam.to_camera(v.x_m, v.y_m, 0.0)
            rad = 0.5 * (v.length_m + v.width_m)
            if -rad < d < self._object_view_m + rad and abs(r) - rad < (max(d, 0.0) + rad) * self._tan_half_fov:
                keep.append(v)
        return _Vehicles(keep) if keep else None

    def _ambient_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Light other than direct sun at world points: ambient plus the ego's headlights, ``(n, 3)``."""
        w = self.weather
        amb = self._amb_obj[None, :]
        if not w.headlights or len(x) == 0:
            return np.repeat(amb, len(x), axis=0)
        cam = self.camera
        c, s = -cam._r[1], cam._r[0]  # heading from the camera's right vector (sin, -cos)
        dx, dy = x - cam._o[0], y - cam._o[1]
        e = self._headlight_light(dx * c + dy * s, -dx * s + dy * c)
        return amb + (w.headlight_gain * e)[:, None] * _HEADLIGHT_RGB

    def _finish(self, albedo: np.ndarray, light: np.ndarray, fog: np.ndarray) -> List[List[int]]:
        """Colours ``albedo * light`` (``(n, 3)`` each) blended toward the fog by ``fog`` ``(n,)``."""
        c = albedo * light
        c += (self._fog_rgb - c) * fog[:, None]
        return np.minimum(np.maximum(c + 0.5, 0.0), 255.0).astype(np.int64).tolist()

    def _draw_things(self, rgb: np.ndarray, sem: np.ndarray, objs: np.ndarray, depth: np.ndarray,
                     rng_m: np.ndarray, veh: Optional["_Vehicles"]) -> None:
        """Objects and vehicles, far to near; all their polygons are clipped and projected in one call."""
        b = _Batch()
        items: List[Tuple[float, list]] = []  # (range, primitives), drawn far to near
        if len(objs):
            self._gather_statics(objs, depth, rng_m, b, items)
        if veh is not None:
            self._gather_vehicles(veh, b, items)
        if not items:
            return
        polys = b.project(self)
        items.sort(key=itemgetter(0), reverse=True)
        fill = cv2.fillConvexPoly
        ellipse = cv2.ellipse
        for _, prims in items:
            for p in prims:
                tag = p[0]
                if tag == 0:  # convex polygon: (0, index, colour, label or None)
                    pts = polys[p[1]]
                    if pts is not None:
                        fill(rgb, pts, p[2], _AA, SHIFT)
                        if p[3] is not None:
                            fill(sem, pts, p[3], _HARD, SHIFT)
                elif tag == 3:  # projected convex polygon: (3, points, colour, label or None)
                    fill(rgb, p[1], p[2], _AA, SHIFT)
                    if p[3] is not None:
                        fill(sem, p[1], p[3], _HARD, SHIFT)
                elif tag == 1:  # ellipse: (1, centre, axes, colour, label or None)
                    ellipse(rgb, p[1], p[2], 0.0, 0.0, 360.0, p[3], -1, _AA, SHIFT)
                    if p[4] is not None:
                        ellipse(sem, p[1], p[2], 0.0, 0.0, 360.0, p[4], -1, _HARD, SHIFT)
                elif tag == 5:  # labels of disjoint projected polygons in one call: (5, points list, label)
                    cv2.fillPoly(sem, p[1], p[2], _HARD, SHIFT)
                elif tag == 4:  # labels of disjoint polygons in one call: (4, refs, label)
                    sel = [polys[i] if i.__class__ is int else i for i in p[1]]
                    sel = [q for q in sel if q is not None]
                    if sel:
                        cv2.fillPoly(sem, sel, p[2], _HARD, SHIFT)
                else:  # many disjoint polygons of one colour: (2, indices, colour)
                    sel = [polys[i] for i in p[1] if polys[i] is not None]
                    if sel:
                        cv2.fillPoly(rgb, sel, p[2], _AA, SHIFT)

    def _ellipse_params(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, rx_m: np.ndarray, ry_m: np.ndarray):
        """Screen ellipses of upright discs facing the camera: ``(ok, centres, axes)`` as Python lists."""
        cam = self.camera
        d, r, u = cam.to_camera(x, y, z)
        ok = d > 0.5
        dd = np.where(ok, d, 1.0)
        f = cam.focal_px / dd
        # Giant ellipses of objects beside the camera only cost time: they are off screen or fill it.
        ok &= np.maximum(rx_m, ry_m) * f < 8.0 * (self.width_px + self.height_px)
        ctr = np.empty((len(d), 2))
        ctr[:, 0] = (cam.cx_px - 0.5) + r * f
        ctr[:, 1] = (cam.cy_px - 0.5) - u * f
        axes = np.empty((len(d), 2))
        axes[:, 0] = rx_m * f
        axes[:, 1] = ry_m * f
        ctr = (ctr * _ONE + 0.5).astype(np.int64).tolist()
        axes = np.maximum((axes * _ONE + 0.5).astype(np.int64), 1).tolist()
        return ok.tolist(), ctr, axes

    def _gather_statics(self, objs: np.ndarray, depth: np.ndarray, rng_m: np.ndarray, b: "_Batch",
                        items: list) -> None:
        cam, w = self.camera, self.weather
        kind = self._obj_kind[objs]
        ox, oy = self._obj_xy[objs, 0], self._obj_xy[objs, 1]
        fog = w.fog_fraction(rng_m)
        amb = self._ambient_at(ox, oy)
        sun = self._sun_rgb[None, :]
        sunny = self._sunny
        sx, sy, _ = w.sun_direction
        rx, ry = cam._r  # camera right (horizontal): billboards face the camera
        toward_sun = max(-1.0, min(1.0, sx * rx + sy * ry))  # + when the sun is to the right
        albedo = self._obj_color[objs]
        rng_list = rng_m.tolist()
        f_px = cam.focal_px / np.maximum(depth, 0.5)  # pixels per metre at each object
        by_kind = [np.nonzero(kind == k)[0] for k in range(4)]

        sel = by_kind[_TREE]
        if len(sel):
            self._gather_trees(objs[sel], sel, amb[sel], fog[sel], rng_list, toward_sun, items)

        sel = by_kind[_POLE]
        if len(sel):
            j = objs[sel]
            L, Wd, Ht = self._obj_dims[j].T
            x, y = ox[sel], oy[sel]
            ax_, ay_ = self._obj_reach[j].T  # toward the road
            n = len(sel)
            cols = self._finish(np.concatenate([albedo[sel], np.broadcast_to(_LAMP_HEAD_F, (n, 3))]),
                                np.concatenate([amb[sel] + 0.5 * sun] * 2), np.concatenate([fog[sel]] * 2))
            half = 0.5 * Wd
            za, zh = Ht - 0.35, Ht - 0.47
            # The post faces the camera; the arm and the lamp head are thin bars over the road, end to end.
            first = b.many(np.concatenate([x[:, None] + (rx * half)[:, None] * _QX,
                                           x[:, None] + (ax_ * 1.35)[:, None] * _BX,
                                           (x + ax_ * 1.35)[:, None] + (ax_ * 0.6)[:, None] * _BX]),
                           np.concatenate([y[:, None] + (ry * half)[:, None] * _QX,
                                           y[:, None] + (ay_ * 1.35)[:, None] * _BX,
                                           (y + ay_ * 1.35)[:, None] + (ay_ * 0.6)[:, None] * _BX]),
                           np.concatenate([Ht[:, None] * _QZ, (za - 0.05)[:, None] + 0.1 * _QZ,
                                           (zh - 0.07)[:, None] + 0.14 * _QZ]))
            detail = (Ht * f_px[sel] >= 12.0).tolist()
            glow = None
            if w.is_dark:
                # Lit lamps: a warm glow that fog cannot hide completely.
                glow = self._ellipse_params(x + ax_ * 1.65, y + ay_ * 1.65, Ht - 0.55, np.full(n, 0.45),
                                            np.full(n, 0.25))
                gcol = self._finish(np.broadcast_to(_LAMP_GLOW_F, (n, 3)), np.ones((n, 3)), 0.6 * fog[sel])
            for i, k in enumerate(sel.tolist()):
                prims = [(0, first + i, cols[i], _OBJECT)]
                if detail[i]:
                    # The arm and the head touch but do not overlap: one label call for both.
                    prims += [(0, first + n + i, cols[i], None), (0, first + 2 * n + i, cols[n + i], None),
                              (4, (first + n + i, first + 2 * n + i), _OBJECT)]
                if glow is not None and glow[0][i]:
                    prims.append((1, glow[1][i], glow[2][i], gcol[i], None))
                items.append((rng_list[k], prims))

        sel = by_kind[_SIGN]
        if len(sel):
            self._gather_signs(objs[sel], sel, ox[sel], oy[sel], amb[sel], fog[sel], rng_list, b, items)

        sel = by_kind[_BUILDING]
        if len(sel):
            per_box = self._building_prims(b, objs[sel], amb[sel], fog[sel])
            for k, prims in zip(sel.tolist(), per_box):
                items.append((rng_list[k], prims))

    def _gather_signs(self, j: np.ndarray, where: np.ndarray, x: np.ndarray, y: np.ndarray, amb: np.ndarray,
                      fog: np.ndarray, rng_list: list, b: "_Batch", items: list) -> None:
        """Signs: a post facing the camera and a plate facing the traffic (with a border seen from the front).

        Args:
            j: object indices; where: their positions in the frame's object list
            (for ``rng_list``); x, y: their feet (metres); amb, fog: their light and fog.
        """
        cam = self.camera
        n = len(j)
        Ht = self._obj_dims[j, 2]
        nx, ny = self._obj_facing[j].T
        tx, ty = -ny, nx
        sx, sy, _ = self.weather.sun_direction
        rx, ry = cam._r
        o = cam._o
        front = ((o[0] - x) * nx + (o[1] - y) * ny > 0).tolist()
        face_sun = np.maximum(0.0, sx * nx + sy * ny)
        sun = self._sun_rgb
        lit = amb + (0.2 + face_sun)[:, None] * sun + 0.2
        albedo = np.empty((n, 3, 3))
        albedo[:, 0], albedo[:, 1], albedo[:, 2] = POST, self._obj_color[j], SIGN_BORDER
        light = np.empty((n, 3, 3))
        light[:, 0], light[:, 1], light[:, 2] = amb + 0.5 * sun, lit, lit
        cols = self._finish(albedo.reshape(-1, 3), light.reshape(-1, 3), np.repeat(fog, 3))
        z0 = Ht - 0.75

        def quads(cx, cy, ax, ay, za, zb):
            Z = np.empty((n, 4))
            Z[:, :2], Z[:, 2:] = za[:, None], zb[:, None]
            return b.many(cx[:, None] + ax[:, None] * _QX, cy[:, None] + ay[:, None] * _QX, Z)

        # The post ends where the plate begins: one label call for both.
        post = quads(x, y, np.full(n, rx * 0.04), np.full(n, ry * 0.04), np.zeros(n), z0)
        plate = quads(x, y, tx * 0.42, ty * 0.42, z0, Ht)
        inner = quads(x + 0.01 * nx, y + 0.01 * ny, tx * 0.31, ty * 0.31, z0 + 0.11, Ht - 0.11)
        for i, k in enumerate(where.tolist()):
            c_post, c_plate, c_border = cols[3 * i:3 * i + 3]
            prims = [(0, post + i, c_post, None), (0, plate + i, c_border if front[i] else c_post, None),
                     (4, (post + i, plate + i), _OBJECT)]
            if front[i]:
                prims.append((0, inner + i, c_plate, None))
            items.append((rng_list[k], prims))

    def _gather_trees(self, j: np.ndarray, where: np.ndarray, amb: np.ndarray, fog: np.ndarray, rng_list: list,
                      toward_sun: float, items: list) -> None:
        """Trees drawn straight in screen space: trunk, crown (an ellipse or a cone) and a sunlit highlight.

        The trunk ends exactly where the crown begins (the ellipse gets a flat
        bottom there), so the two never overlap and one even-odd ``fillPoly``
        labels both. Everything is computed for all trees at once.

        Args:
            j: object indices; where: their positions in the frame's object list
            (for ``rng_list``); amb, fog: their light and fog.
        """
        cam, w = self.camera, self.weather
        n = len(j)
        g = self._tree_geo[j]
        rv, cw, zb, half = g[:, 0], g[:, 1], g[:, 3], g[:, 4]
        xy = self._obj_xy[j]
        rx, ry = cam._r
        # Points per tree: foot, trunk top, crown centre (a cone's apex), highlight centre.
        X = np.empty((4, n))
        Y = np.empty((4, n))
        X[:3] = xy[:, 0]
        Y[:3] = xy[:, 1]
        sh = (toward_sun * 0.25) * cw
        X[3] = xy[:, 0] + rx * sh
        Y[3] = xy[:, 1] + ry * sh
        d, r, u = cam.to_camera(X, Y, g[:, 5:9].T)
        k = cam.focal_px / np.maximum(d, 1.0)
        su = (cam.cx_px - 0.5) + r * k
        sv = (cam.cy_px - 0.5) - u * k
        ax, ay = cw * k[2], rv * k[2]
        # Behind the camera, or giant beside it (off screen or filling it): skip.
        ok = ((d[0] > 1.0) & (d[2] > 1.0) & (ax < 8.0 * (self.width_px + self.height_px))).tolist()
        unit = self._crown_unit
        K = len(unit)
        # All outlines in one array: trunk (4), crown (K), highlight (K), cone (4), sunny flank (4).
        F = np.empty((n, 12 + 2 * K, 2))
        tr, cr, hl = F[:, 0:4], F[:, 4:4 + K], F[:, 4 + K:4 + 2 * K]
        co, fl = F[:, 4 + 2 * K:8 + 2 * K], F[:, 8 + 2 * K:]
        hf, ht = half * k[0], half * k[1]
        tr[:, 0, 0] = su[0] - hf
        tr[:, 1, 0] = su[0] + hf
        tr[:, 2, 0] = su[1] + ht
        tr[:, 3, 0] = su[1] - ht
        tr[:, :2, 1] = sv[0][:, None]
        tr[:, 2:, 1] = sv[1][:, None]
        cr[..., 0] = su[2][:, None] + ax[:, None] * unit[:, 0]
        cr[..., 1] = sv[2][:, None] + ay[:, None] * unit[:, 1]
        # The flat bottom: as wide as the trunk top, within what keeps the polygon convex.
        bw = np.minimum(ht, self._crown_flat * ax)
        cr[:, 0, 0] = su[2] - bw
        cr[:, -1, 0] = su[2] + bw
        cr[:, 0, 1] = sv[1]
        cr[:, -1, 1] = sv[1]
        hl[..., 0] = su[3][:, None] + (0.66 * ax)[:, None] * unit[:, 0]
        hl[..., 1] = sv[3][:, None] + (0.68 * ay)[:, None] * unit[:, 1]
        # Cones: the base on the trunk top, the apex above; the sunny flank a narrower cone beside it.
        wb = cw * k[1]
        co[:, 0, 0] = su[1] - wb
        co[:, 1, 0] = su[1] + wb
        co[:, :2, 1] = sv[1][:, None]
        co[:, 2:, 0] = su[2][:, None]
        co[:, 2:, 1] = sv[2][:, None]
        off = su[1] + (toward_sun * 0.3) * wb
        height = sv[1] - sv[2]
        fl[:, 0, 0] = off - 0.5 * wb
        fl[:, 1, 0] = off + 0.5 * wb
        fl[:, :2, 1] = (sv[1] - 0.12 * height)[:, None]
        fl[:, 2:, 0] = (su[2] + (toward_sun * 0.3) * wb)[:, None]
        fl[:, 2:, 1] = (sv[2] + 0.07 * height)[:, None]
        P = np.rint(F * _ONE).astype(np.int32)
        # Colours: trunk, crown, sunlit crown; crowns are high, so the low beams light them half as much.
        sun = self._sun_rgb
        a = 0.5 * (amb + self._amb_obj) if w.headlights else amb
        light = np.empty((3, n, 3))
        light[0] = amb + 0.4 * sun
        light[1] = a + 0.3 * sun
        light[2] = a + 0.85 * sun
        albedo = np.empty((3, n, 3))
        albedo[0] = _TRUNK_F
        albedo[1:] = self._obj_color[j]
        c = (albedo * light).reshape(-1, 3)
        f3 = np.concatenate((fog, fog, fog))[:, None]
        cols = (c + (self._fog_rgb - c) * f3 + 0.5).clip(0.0, 255.0).astype(np.int64).tolist()
        # Level of detail: a crown under 4 px is drawn without trunk, under 8 px without highlight.
        crown_px = 2.0 * ay
        detail = (crown_px >= 4.0).tolist()
        shaded = (crown_px >= 8.0).tolist() if self._sunny else [False] * n
        conifer = self._obj_conifer[j].tolist()
        e1, e2, e3 = 4 + K, 4 + 2 * K, 8 + 2 * K
        for i, kk in enumerate(where.tolist()):
            if not ok[i]:
                continue
            q = P[i]
            top = q[e2:e3] if conifer[i] else q[4:e1]
            if detail[i]:
                trunk = q[:4]
                prims = [(3, trunk, cols[i], None), (3, top, cols[n + i], None), (5, [trunk, top], _TERRAIN)]
            else:
                prims = [(3, top, cols[n + i], _TERRAIN)]
            if shaded[i]:
                prims.append((3, q[e3:] if conifer[i] else q[e1:e2], cols[2 * n + i], None))
            items.append((rng_list[kk], prims))

    def _building_prims(self, b: "_Batch", j: np.ndarray, ambient: np.ndarray, fog: np.ndarray) -> List[list]:
        """Primitives of the visible faces (and the windows on them) of buildings ``j``.

        The geometry is precomputed by :meth:`_build_buildings`; per frame only
        the visibility, the light and the window level of detail are worked out,
        for all buildings at once. A convex box's faces never overlap.

        Args:
            j: ``(k,)`` object indices of buildings.
            ambient: ``(k, 3)`` light besides the sun at each building.
            fog: ``(k,)`` fog fraction at each building.

        Returns:
            One list of primitives per building.
        """
        cam, w = self.camera, self.weather
        rows = self._bld_row[j]
        nx, ny, nz = self._bld_nx[rows], self._bld_ny[rows], self._bld_nz
        o = cam._o
        visible = ((o[0] - self._bld_px[rows]) * nx + (o[1] - self._bld_py[rows]) * ny
                   + (o[2] - self._bld_pz[rows]) * nz > 1e-6)
        out: List[list] = [[] for _ in range(len(j))]
        if not visible.any():
            return out
        cos_sun = self._bld_cos_sun[rows]
        amb = ambient[:, None, :]
        light = np.where((nz > 0)[..., None], amb / 0.85, amb) + cos_sun[..., None] * self._sun_rgb
        kk, ff = np.nonzero(visible)
        cols = self._finish(self._obj_color[j[kk]], light[kk, ff], fog[kk])
        rk = rows[kk]
        first = b.many(self._bld_qx[rk, ff], self._bld_qy[rk, ff], self._bld_qz[rk, ff])
        kl, fl = kk.tolist(), ff.tolist()
        for i, (k, f) in enumerate(zip(kl, fl)):
            out[k].append((0, first + i, cols[i], _OBJECT))
        # Windows on the visible walls near enough for them to be over ~4 px tall.
        wall = ff < 4
        if not wall.any():
            return out
        wk, wf, wr = kk[wall], ff[wall], rk[wall]
        c = self._bld_wall_c[wr, wf]
        d, _, _ = cam.to_camera(c[:, 0], c[:, 1], c[:, 2])
        near = (d >= 1.0) & (cam.focal_px * 1.4 / np.maximum(d, 1.0) >= 4.0) & (self._bld_win_n[wr, wf] > 0)
        if not near.any():
            return out
        wk, wf, wr = wk[near], wf[near], wr[near]
        cs = cos_sun[wk, wf]
        # Glass reflects the sky: brighter than its albedo suggests.
        glass = self._finish(np.broadcast_to(_WINDOW_F, (len(wk), 3)),
                             ambient[wk] + (0.3 * cs)[:, None] * self._sun_rgb + 0.2, fog[wk])
        dark = w.is_dark
        for i, (k, f, r) in enumerate(zip(wk.tolist(), wf.tolist(), wr.tolist())):
            wx, wy, wz, lit = self._bld_windows[r][f]
            first = b.many(wx, wy, wz)
            idx = list(range(first, first + len(wx)))
            out[k].append((2, idx, glass[i]))
            if dark and lit.any():
                # A few lit windows at night, the same ones every frame.
                out[k].append((2, [q for q, on in zip(idx, lit.tolist()) if on],
                               _mix((255, 208, 130), w.fog_rgb, 0.7 * float(fog[k]))))
        return out

    def _gather_vehicles(self, veh: "_Vehicles", b: "_Batch", items: list) -> None:
        """Cars from the template :data:`_CAR`: every face of every car transformed, tested and lit at once."""
        cam, w = self.camera, self.weather
        n = len(veh.x)
        d0, r0, _ = cam.to_camera(veh.x, veh.y, 0.0)
        rng_m = np.hypot(d0, r0)
        fog = w.fog_fraction(rng_m)
        amb = self._ambient_at(veh.x, veh.y)
        c, s = np.cos(veh.yaw), np.sin(veh.yaw)
        dims = np.stack([veh.length, veh.width, veh.height], 1)[:, None, :]  # (n, 1, 3)
        # Level of detail: a car under 6 px tall is one box without lamps.
        small = veh.height * cam.focal_px / np.maximum(d0, 0.5) < 6.0
        use = np.where(small[:, None], _CAR.lod[None, :], ~_CAR.lod[None, :])  # (n, F)
        # Face centres and normals in the world frame; a face is seen from its outer side.
        ctr = _CAR.centre[None, :, :] * dims  # (n, F, 3), vehicle frame
        wx = veh.x[:, None] + c[:, None] * ctr[..., 0] - s[:, None] * ctr[..., 1]
        wy = veh.y[:, None] + s[:, None] * ctr[..., 0] + c[:, None] * ctr[..., 1]
        nl = _CAR.normal
        nx = c[:, None] * nl[None, :, 0] - s[:, None] * nl[None, :, 1]
        ny = s[:, None] * nl[None, :, 0] + c[:, None] * nl[None, :, 1]
        nz = nl[:, 2]
        o = cam._o
        vis = use & ((o[0] - wx) * nx + (o[1] - wy) * ny + (o[2] - ctr[..., 2]) * nz > 1e-6)
        dark = w.is_dark
        if dark:
            vis &= ~_CAR.lamp[None, :]  # lamps glow instead (below)
        vi, fi = np.nonzero(vis)
        if len(vi):
            # Corners of the visible faces.
            loc = _CAR.corners[fi] * dims[vi]  # (k, 4, 3)
            cv_, sv_ = c[vi][:, None], s[vi][:, None]
            qx = veh.x[vi][:, None] + cv_ * loc[..., 0] - sv_ * loc[..., 1]
            qy = veh.y[vi][:, None] + sv_ * loc[..., 0] + cv_ * loc[..., 1]
            first = b.many(qx, qy, loc[..., 2])
            # Light: sky (more on the roof), sun by the face's angle; lamps shine a little on their own.
            sx, sy, sz = w.sun_direction
            top = nz[fi] > 0.5
            cos_sun = np.where(top, max(0.0, sz), np.maximum(0.0, nx[vi, fi] * sx + ny[vi, fi] * sy))
            light = np.where(top[:, None], amb[vi] / 0.85, amb[vi]) + cos_sun[:, None] * self._sun_rgb
            light = light + _CAR.glow[fi][:, None]
            albedo = np.where(_CAR.paint[fi][:, None], veh.color[vi], _CAR.albedo[fi])
            cols = self._finish(albedo, light, fog[vi])
            per_vehicle: List[list] = [[] for _ in range(n)]
            # Faces are in drawing order; after a box's faces comes one label call for all of them.
            boxes = _CAR.box_l
            refs: list = []
            for k, (v, f) in enumerate(zip(vi.tolist(), fi.tolist())):
                prims = per_vehicle[v]
                prims.append((0, first + k, cols[k], None))
                if boxes[f]:
                    refs.append(first + k)
                    nk = k + 1
                    if nk == len(vi) or vi[nk] != v or boxes[fi[nk]] != boxes[f]:
                        prims.append((4, refs, _VEHICLE))
                        refs = []
        else:
            per_vehicle = [[] for _ in range(n)]
        if dark:
            self._lamp_glows(veh, small, c, s, fog, per_vehicle)
        for v in range(n):
            items.append((float(rng_m[v]), per_vehicle[v]))

    def _lamp_glows(self, veh: "_Vehicles", small: np.ndarray, c: np.ndarray, s: np.ndarray, fog: np.ndarray,
                    per_vehicle: List[list]) -> None:
        """Glowing lamps of cars in the dark (and their smears on a wet road), for the ends facing the camera."""
        cam, w = self.camera, self.weather
        o = cam._o
        for v in np.nonzero(~small)[0].tolist():
            ci, si, fi = float(c[v]), float(s[v]), float(fog[v])
            vx, vy = float(veh.x[v]), float(veh.y[v])
            vl, vw, vh = float(veh.length[v]), float(veh.width[v]), float(veh.height[v])
            z = 0.5 * vh
            prims = per_vehicle[v]
            for end in (-1.0, 1.0):
                fx, fy = vx + end * 0.5 * vl * ci, vy + end * 0.5 * vl * si
                if (o[0] - fx) * end * ci + (o[1] - fy) * end * si <= 0:
                    continue  # that end faces away
                glow = _mix((255, 60, 40) if end < 0 else (255, 250, 235), w.fog_rgb, 0.5 * fi)
                smear = _mix(glow, (14, 14, 18), 0.72)
                for side in (-1.0, 1.0):
                    lx = fx - side * 0.36 * vw * si
                    ly = fy + side * 0.36 * vw * ci
                    dc, rc, uc = cam.to_camera(lx, ly, z)
                    if dc <= 0.5:
                        continue
                    cu, cv = cam.image_from_camera(dc, rc, uc)
                    rad = max(1.0, cam.focal_px * (0.16 if end < 0 else 0.22) / dc)
                    if w.wetness > 0.3:
                        # The wet road mirrors the lamp: a dim streak from the car's foot toward the
                        # viewer, drawn first so the car hides its top.
                        dg, rg, ug = cam.to_camera(lx, ly, -z)
                        if dg > 0.5:
                            gu, gv = cam.image_from_camera(dg, rg, ug)
                            reach = gv - cv
                            prims.insert(0, (1, (int(round((gu - 0.5) * _ONE)),
                                                 int(round((gv - 0.5 - 0.1 * reach) * _ONE))),
                                             (int(max(0.6, 0.35 * rad) * _ONE), int(max(1.0, 0.55 * reach) * _ONE)),
                                             smear, None))
                    prims.append((1, (int(round((cu - 0.5) * _ONE)), int(round((cv - 0.5) * _ONE))),
                                  (int(rad * _ONE), int(0.7 * rad * _ONE)), glow, None))

    # -- rain --------------------------------------------------------------------
    def _build_rain(self) -> None:
        """Streaks of :data:`RAIN_FRAMES` frames, from the seed: a faint many and a brighter few per frame.

        Drawn in frame order and repeating after RAIN_FRAMES frames (25.6 s at
        20 Hz), so a frame costs two ``polylines`` calls and no random draws.
        """
        w = self.weather
        self._rain_segs = None
        if w.rain <= 0.0:
            return
        H, W = self.height_px, self.width_px
        rng = np.random.default_rng((self.seed, 4242))
        n = int(w.rain * W * H / 2500.0) + 2
        shape = (RAIN_FRAMES, n)
        x0 = rng.uniform(0.0, W, shape)
        y0 = rng.uniform(-0.1 * H, H, shape)
        length = rng.uniform(0.025, 0.07, shape) * H
        slant = 0.1 + rng.normal(0.0, 0.02, shape)
        segs = np.stack([np.stack([x0, y0], -1), np.stack([x0 + slant * length, y0 + length], -1)], axis=2)
        self._rain_segs = np.rint((segs - 0.5) * _ONE).astype(np.int32)  # (frames, n, 2, 2)
        light = (215, 220, 230) if not w.headlights else (120, 124, 132)
        self._rain_rgb = (_mix(w.fog_rgb, light, 0.22), _mix(w.fog_rgb, light, 0.45))
        self._rain_few = max(1, n // 5)

    def _draw_rain(self, rgb: np.ndarray, frame: int) -> None:
        """This frame's streaks, slanted by the wind."""
        segs = self._rain_segs[int(frame) % RAIN_FRAMES]
        few = self._rain_few
        cv2.polylines(rgb, segs[few:], False, self._rain_rgb[0], 1, _AA, SHIFT)
        cv2.polylines(rgb, segs[:few], False, self._rain_rgb[1], 1, _AA, SHIFT)


class _Batch:
    """World-space quads of the frame's objects, clipped and projected together.

    Every polygon has 4 vertices (a triangle repeats its apex). Each call
    returns the index of its (first) polygon; :meth:`project` returns the
    projected polygons in that order.
    """

    def __init__(self) -> None:
        self._chunks: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._count = 0

    def many(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> int:
        """Add ``(n, 4)`` quads (world metres); returns the index of the first."""
        self._chunks.append((x, y, z))
        first = self._count
        self._count += len(x)
        return first

    def project(self, r: Renderer) -> List[Optional[np.ndarray]]:
        if not self._chunks:
            return []
        X = np.concatenate([c[0] for c in self._chunks]).ravel()
        Y = np.concatenate([c[1] for c in self._chunks]).ravel()
        Z = np.concatenate([c[2] for c in self._chunks]).ravel()
        n = len(X) // 4
        d, rr, u = r.camera.to_camera(X, Y, Z)
        nxt = np.arange(1, 4 * n + 1)
        nxt[3::4] -= 4
        return r._clip_polys(d, rr, u, nxt, np.repeat(np.arange(n), 4), n)
