"""``sensor.camera.depth`` and ``sensor.camera.instance_segmentation``: per-pixel ray casts of a pinhole
camera against the served world (:mod:`.scene`, :mod:`.raycast`).

The camera is CARLA's: ``focal = image_size_x / (2 tan(fov / 2))``, principal point at the image
centre, pixel centres at half-integers, mounted with its full transform. The ray of a pixel has a
forward component of 1, so its hit parameter is the planar depth CARLA's depth camera gives (the
distance along the optical axis), not the range. The ground is cast for every pixel at once; each
box only for the pixels of its projected bounding rectangle. Nothing hit within 1000 m is 1000 m
(the sky). The sensor's own parent is not hit (the embedded world has no car body to see).

Depth (``ImageSerializer``, BGRA): CARLA's 24-bit encoding, ``value = round(depth / 1000 * (2^24 - 1))``,
``R = value & 255, G = (value >> 8) & 255, B = value >> 16``; decode ``(R + 256 G + 65536 B) / (2^24 - 1)
* 1000`` m. Instance segmentation: red = CityObjectLabel (the embedded renderer's semantic image, as
``sensor.camera.semantic_segmentation``), green and blue = the id of the actor hit, low and high byte
(0 for what is not an actor: ground, roadside objects).
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from carla_agent.server.sensors import raycast, scene
from carla_agent.server.sensors.base import CAMERA_ATTRIBUTES, TYPE_IMAGE, Sensor
from carla_agent.server.wire import SEMANTIC_TO_CARLA

FAR_M = 1000.0
NEAR_M = 0.05
_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
#: The 12 edges of a box as pairs of corner indices (corners that differ in one coordinate).
_EDGES = np.array([(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1])


class DepthCamera(Sensor):
    TYPE_ID = "sensor.camera.depth"
    SENSOR_TYPE = TYPE_IMAGE  # the RGB camera's serializer: the wheel decodes it as a carla.Image
    TAGS = "sensor,camera,depth"
    ATTRIBUTES = CAMERA_ATTRIBUTES
    IS_CAMERA = True

    def __init__(self, attrs) -> None:
        super().__init__(attrs)
        # checks.camera() has bounded these when the camera was spawned
        self.width = self.integer("image_size_x", 1, 4096)
        self.height = self.integer("image_size_y", 1, 4096)
        self.fov_deg = self.number("fov", 0.0, 180.0, lo_open=True)
        self.focal_px = self.width / (2.0 * math.tan(math.radians(self.fov_deg) / 2.0))
        u = (np.arange(self.width) + 0.5 - 0.5 * self.width) / self.focal_px
        v = (np.arange(self.height) + 0.5 - 0.5 * self.height) / self.focal_px
        self.local = np.stack(np.broadcast_arrays(1.0, u[None, :], -v[:, None]), -1)  # (H, W, 3)
        self.bgra = np.zeros((self.height, self.width, 4), np.uint8)

    def hits(self, world, actor, view):
        """``(t (H, W) planar depth m, index (H, W) box or raycast.GROUND / MISS, boxes)``."""
        pose = view.pose
        o = pose.origin_m
        t = np.full((self.height, self.width), np.inf)
        index = np.full(t.shape, raycast.MISS, np.int64)
        if o[2] > 0.0:
            r = pose.rot[2]  # a ray's world z per unit planar depth: r . (1, right, up) of its pixel
            dz = r[0] + r[1] * self.local[0, :, 1][None, :] + r[2] * self.local[:, 0, 2][:, None]
            with np.errstate(divide="ignore"):
                tg = np.where(dz < 0.0, o[2] / -dz, np.inf)
            ground = tg <= FAR_M
            t[ground], index[ground] = tg[ground], raycast.GROUND
        boxes = scene.scene_boxes(world, view.traffic, o, FAR_M, exclude=actor.parent)
        for k, (r0, r1, c0, c1) in self._rects(boxes, pose):
            sub_t = t[r0:r1, c0:c1].reshape(-1).copy()
            sub_i = np.full(sub_t.shape, raycast.MISS, np.int64)
            sub_n = np.zeros((len(sub_t), 3))
            dirs = (self.local[r0:r1, c0:c1] @ pose.rot.T).reshape(-1, 3)
            raycast.boxes_into(o, dirs, boxes.select([k]), min(FAR_M, float(sub_t.max())), sub_t, sub_i, sub_n)
            won = (sub_i == 0).reshape(r1 - r0, c1 - c0)
            t[r0:r1, c0:c1][won] = sub_t.reshape(won.shape)[won]
            index[r0:r1, c0:c1][won] = k
        return t, index, boxes

    def _rects(self, boxes, pose) -> list:
        """``[(box, (r0, r1, c0, c1))]``: the pixel rows and columns each box may cover (its corners,
        clipped to the near plane, projected); boxes behind the camera or outside the image are left out."""
        if not len(boxes):
            return []
        c, s = np.cos(boxes.yaw_rad)[:, None], np.sin(boxes.yaw_rad)[:, None]
        loc = _CORNERS[None, :, :] * boxes.half_m[:, None, :]  # (M, 8, 3)
        world = boxes.center_m[:, None, :] + np.stack([loc[..., 0] * c - loc[..., 1] * s,
                                                       loc[..., 0] * s + loc[..., 1] * c, loc[..., 2]], -1)
        cam = (world - pose.origin_m) @ pose.rot  # (M, 8, 3): forward, right, up
        front = cam[..., 0] > NEAR_M
        out = []
        for k in np.nonzero(front.any(axis=1))[0].tolist():
            pts = cam[k][front[k]]
            if not front[k].all():  # straddles the near plane: add where its edges cross it
                a, b = cam[k][_EDGES[:, 0]], cam[k][_EDGES[:, 1]]
                cross = (a[:, 0] > NEAR_M) != (b[:, 0] > NEAR_M)
                a, b = a[cross], b[cross]
                f = (NEAR_M - a[:, 0]) / (b[:, 0] - a[:, 0])
                pts = np.concatenate([pts, a + f[:, None] * (b - a)])
            u = 0.5 * self.width + self.focal_px * pts[:, 1] / pts[:, 0]
            v = 0.5 * self.height - self.focal_px * pts[:, 2] / pts[:, 0]
            c0, c1 = max(int(math.floor(u.min())), 0), min(int(math.ceil(u.max())), self.width)
            r0, r1 = max(int(math.floor(v.min())), 0), min(int(math.ceil(v.max())), self.height)
            if c0 < c1 and r0 < r1:
                out.append((k, (r0, r1, c0, c1)))
        return out

    def header(self) -> bytes:
        return np.array([self.width, self.height], "<u4").tobytes() + np.array([self.fov_deg], "<f4").tobytes()

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        t, _, _ = self.hits(world, actor, view)
        value = np.rint(np.minimum(t, FAR_M) * ((1 << 24) - 1) / FAR_M).astype(np.uint32)
        bgra = self.bgra
        bgra[..., 2] = value & 255
        bgra[..., 1] = (value >> 8) & 255
        bgra[..., 0] = value >> 16
        bgra[..., 3] = 255
        return [self.header(), memoryview(bgra).cast("B")]


class InstanceCamera(DepthCamera):
    TYPE_ID = "sensor.camera.instance_segmentation"
    TAGS = "sensor,camera,instance_segmentation"

    def measure(self, world, actor, view, dt_s: float) -> List[bytes]:
        _, index, boxes = self.hits(world, actor, view)
        ids = np.zeros(index.shape, np.uint32)
        on = index >= 0
        ids[on] = boxes.ids[index[on]]
        bgra = self.bgra
        bgra[..., 2] = np.take(SEMANTIC_TO_CARLA, self.semantic(world, actor))
        bgra[..., 1] = ids & 255
        bgra[..., 0] = (ids >> 8) & 255
        bgra[..., 3] = 255
        return [self.header(), memoryview(bgra).cast("B")]

    def semantic(self, world, actor) -> np.ndarray:
        """The embedded renderer's semantic classes ``(H, W)`` uint8 for this camera (drawn as the
        semantic camera draws them: ``actor.camera_spec``)."""
        from carla_agent.sim.embedded.render import Renderer
        from carla_agent.sim.embedded.weather import resolve_weather

        sim = world.sim
        if actor.renderer is None:
            actor.renderer = Renderer(sim.road, actor.camera_spec, resolve_weather(sim._weather_spec), sim.statics,
                                      world.seed, sim.town_view())
        boxes = [v.box(sim.road) for v in sim.traffic if v.active]
        _, sem = actor.renderer.render(sim.state.x_m, sim.state.y_m, sim.state.yaw_rad, sim.s, boxes, sim.frame)
        return sem
