"""The embedded simulator's front camera: RGB and semantic frames from the road model.

One :meth:`Renderer.render` call draws both images from the same polygons in the
same pass: the RGB image with anti-aliased edges (``cv2.LINE_AA``), the label
image without anti-aliasing, so every label is exactly where its surface is.

How a frame is made (OpenDRIVE frame, flat ground z = 0):

1. Copy the background precomputed for this camera and weather: bare terrain
   below the horizon; above it a slice, chosen by the heading, of a sky
   panorama with clouds; then the distant hills, which turn with the car too
   (:mod:`~carla_agent.sim.embedded.render.sky`).
2. Ground, into the rows below the horizon only: every surface is one strip
   polygon along the sampled reference line; all polygons of the frame are
   clipped against the near plane and projected in one vectorised pass, then
   each colour is one ``cv2.fillPoly`` call
   (:mod:`~carla_agent.sim.embedded.render.ground`,
   :mod:`~carla_agent.sim.embedded.render.polygons`).
3. Lane marks fade toward the asphalt as their projected width drops below a
   pixel (keeping their average brightness instead of aliasing); dashes whose
   12 m period would shrink below a few pixels become a faint continuous line
   of the same average brightness, so far marks never flicker
   (:mod:`~carla_agent.sim.embedded.render.marks`).
4. Shadows (sun and contact) multiply a gain image; then one multiply-add applies
   the per-pixel light (headlight pool) and fog/haze of the ground, both
   precomputed per camera and weather (:mod:`~carla_agent.sim.embedded.render.shadows`,
   :mod:`~carla_agent.sim.embedded.render.shading`).
5. Objects and vehicles, far to near (painter's algorithm), lit by the sun and
   fogged by their distance; their polygons are projected in one call too
   (:mod:`~carla_agent.sim.embedded.render.things`). Glare and rain streaks go
   on top (:mod:`~carla_agent.sim.embedded.render.rain`).

Deterministic: textures come from ``seed``, rain from the seed and the frame
number; no global RNG.

The passes are module-level functions over the renderer's state (its private
attributes), which :class:`Renderer` builds in ``__init__`` and
:meth:`Renderer.set_weather` and runs in order in :meth:`Renderer.render`.
"""

from __future__ import annotations

import logging
import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from carla_agent.sim.embedded.camera import Camera
from carla_agent.sim.embedded.render.buildings import build_buildings
from carla_agent.sim.embedded.render.ground import (END_GAP_PX, MAX_VIEW_M, MIN_VIEW_M, PATCH_VIEW_M,
                                                    build_cross_section, build_sampling, build_textures, draw_ground)
from carla_agent.sim.embedded.render.marks import DASH_M, DASH_PERIOD_M, MARK_LEVELS
from carla_agent.sim.embedded.render.objects import OBJECT_VIEW_M, build_objects, frame_objects
from carla_agent.sim.embedded.render.palette import (ASPHALT, ASPHALT_PATCHES, ASPHALT_TRACK, CURB, DIRT,
                                                     DIRT_PATCHES, GRASS, GRASS_PATCHES, GRAVEL_EDGE, MARK_WHITE,
                                                     MARK_YELLOW, RGB, SHOULDER, SIDEWALK, mix_rgb, scale_rgb)
from carla_agent.sim.embedded.render.rain import build_rain, draw_rain
from carla_agent.sim.embedded.render.shading import apply_post, build_post
from carla_agent.sim.embedded.render.shadows import apply_shadows, build_static_shadows
from carla_agent.sim.embedded.render.sky import apply_glare, build_background, build_glare, draw_sky, draw_sun
from carla_agent.sim.embedded.render.lights import build_lights, light_states_at
from carla_agent.sim.embedded.render.things import draw_things
from carla_agent.sim.embedded.render.town_draw import TownView
from carla_agent.sim.embedded.render.town_ground import town_ground
from carla_agent.sim.embedded.render.trees import crown_outline
from carla_agent.sim.embedded.render.vehicles import vehicles_in_view
from carla_agent.sim.embedded.road import Road
from carla_agent.sim.embedded.weather import Weather, resolve_weather
from carla_agent.sim.embedded.world import StaticObject, VehicleBox

log = logging.getLogger(__name__)


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
        town: in a town, ``road`` is the route's corridor and the whole town is
            drawn around it (:mod:`~carla_agent.sim.embedded.render.town_draw`):
            every road, junction, sidewalk, mark and traffic light; the corridor
            keeps its surfaces, and the town paints the marks. None: one road.
    """

    def __init__(self, road: Road, camera_spec, weather, static_objects: Sequence[StaticObject] = (),
                 seed: int = 0, town: Optional[TownView] = None) -> None:
        self.road = road
        self._town = town
        self._town_ground = town_ground(town.network) if town is not None else None
        self.camera = Camera(camera_spec)
        self.seed = int(seed)
        self.width_px = self.camera.width_px
        self.height_px = self.camera.height_px
        cam = self.camera
        self._tan_half_fov = math.tan(0.5 * cam.fov_rad) * 1.02  # a little wide: culling must not clip
        self._crown_unit, self._crown_flat = crown_outline(self.width_px)
        # Texture patches are drawn while a 3 m patch is over a pixel tall (focal * height * 3 / d^2).
        self._patch_view_m = float(np.clip(math.sqrt(cam.focal_px * cam.height_m * 3.0), 15.0, PATCH_VIEW_M))
        # Far enough that the road's end lies within END_GAP_PX of the horizon.
        self.view_m = float(np.clip(cam.focal_px * cam.height_m / END_GAP_PX, MIN_VIEW_M, MAX_VIEW_M))
        # The reference line's dense samples, with the heading as a unit vector (interpolated directly).
        self._ref_s, self._ref_x, self._ref_y = road.s, road.x, road.y
        self._ref_cos, self._ref_sin = np.cos(road.hdg), np.sin(road.hdg)
        # Geometry that depends on the road and camera only.
        build_sampling(self)
        build_cross_section(self)
        build_textures(self)
        build_objects(self, static_objects)
        build_buildings(self)
        self._tl_ids: list = []
        if town is not None:
            build_lights(self, town.network)
        self.weather: Weather
        self.set_weather(weather)

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
            return scale_rgb(rgb, (pl[0] * g, pl[1] * g, pl[2] * g))

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
            yellow: [mix_rgb(self._col["asphalt"], self._col["mark_y" if yellow else "mark_w"], k / MARK_LEVELS)
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
        build_background(self)
        build_post(self)
        build_glare(self)
        build_rain(self)
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
        build_static_shadows(self)
        self._shadow_reach_m = 10.0 * reach + 5.0  # how far from its foot a shadow can end
        # Beyond this a 4 m deep shadow is under a fifth of a pixel tall (focal * height * 4 / d^2): skip it.
        self._shadow_view_m = min(self._object_view_m, float(np.clip(math.sqrt(cam.focal_px * cam.height_m * 30.0),
                                                                     30.0, 120.0)))
        log.debug("renderer %dx%d weather %s: view %.0f m, objects %.0f m, %d samples", self.width_px,
                  self.height_px, w.name, self.view_m, self._object_view_m, self._n_samples)

    def render(self, vehicle_x_m: float, vehicle_y_m: float, vehicle_yaw_rad: float, s_hint_m: float,
               vehicles: Sequence[VehicleBox] = (), frame: int = 0,
               light_states: Optional[Mapping[int, str]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Draw one frame.

        Args:
            vehicle_x_m, vehicle_y_m, vehicle_yaw_rad: the ego's pose (OpenDRIVE frame,
                vehicle centre on the ground, yaw counter-clockwise from +x).
            s_hint_m: the ego's position along the reference line; the road is
                sampled from ``s_hint_m - 80`` m to the view distance ahead of it.
            vehicles: other vehicles as boxes.
            frame: frame number; seeds the rain streaks. In a town, ``frame * dt_s``
                is the time whose light states the traffic lights show ...
            light_states: ... unless given here (signal id -> ``Red``/``Yellow``/``Green``).

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
            draw_sky(self, rgb[:hr], sem[:hr], yaw)
        objs, casting, depth, rng_m = frame_objects(self, s_hint)
        veh = vehicles_in_view(self, vehicles)
        if hr < self.height_px:
            # The ground goes into the rows below the horizon only: none of it can leak into the sky.
            ground_rgb, ground_sem = rgb[hr:], sem[hr:]
            draw_ground(self, ground_rgb, ground_sem, s_hint, hr)
            if veh is not None or len(casting):
                apply_shadows(self, ground_rgb, hr, casting, veh)
            apply_post(self, ground_rgb, ground_sem, hr)
        if self._glare is not None:
            draw_sun(self, rgb)
        states = None
        if self._town is not None:
            states = light_states if light_states is not None else light_states_at(self, frame * self._town.dt_s)
        draw_things(self, rgb, sem, objs, depth, rng_m, veh, states)
        if self._glare is not None:
            apply_glare(self, rgb)
        if self.weather.rain > 0.0:
            draw_rain(self, rgb, frame)
        return rgb, sem
