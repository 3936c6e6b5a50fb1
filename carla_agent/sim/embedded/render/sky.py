"""The sky of the embedded renderer: background, clouds, distant hills, the sun and its glare.

The background (sky gradient over bare terrain) and a 360-degree cloud
panorama are built once per camera and weather; each frame copies the
background, pastes the panorama's slice for the heading and draws the hills'
silhouette, which turns with the car too. Functions take the
:class:`~carla_agent.sim.embedded.render.Renderer` ``ren`` whose state they
read and set.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np

from carla_agent.sim.embedded.render.palette import HILLS, L_SKY, L_TERRAIN, mix_rgb, scale_rgb, smoothstep
from carla_agent.sim.embedded.render.polygons import AA, HARD, ONE, SHIFT
from carla_agent.sim.embedded.weather import Weather


def sky_rgb(w: Weather, elevation_rad: np.ndarray) -> np.ndarray:
    """Sky colour for view elevations (radians above the horizon); ``(N, 3)`` float."""
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


def build_background(ren) -> None:
    """The frame's starting images for this camera and weather: sky over bare terrain, the hills' table."""
    cam, w = ren.camera, ren.weather
    H, W = ren.height_px, ren.width_px
    hr = cam.horizon_row
    v = np.arange(H, dtype=np.float64) + 0.5
    elev = cam.pitch_rad + np.arctan((cam.cy_px - v) / cam.focal_px)
    bg = np.empty((H, W, 3), np.uint8)
    bg[:hr] = np.clip(np.rint(sky_rgb(w, elev)[:hr]), 0, 255).astype(np.uint8)[:, None, :]
    bg[hr:] = np.array(ren._col["terrain"], np.uint8)
    ren._bg_rgb = bg
    build_clouds(ren, elev[:hr])
    sem = np.full((H, W), L_TERRAIN, np.uint8)
    sem[:hr] = L_SKY
    ren._bg_sem = sem
    # Distant hills: a silhouette over world azimuth (fixed by the seed), hazy and low.
    rng = np.random.default_rng((ren.seed, 31337))
    az = np.linspace(0.0, 2.0 * np.pi, 2048, endpoint=False)
    e = np.full_like(az, 0.55)
    for k in range(1, 9):
        e += (0.55 / k ** 0.9) * np.sin(k * az + rng.uniform(0, 2 * np.pi))
    e += 0.18 * np.abs(np.sin(23.0 * az + rng.uniform(0, 2 * np.pi))) + 0.08 * np.sin(61.0 * az)
    ren._hills_az = az
    ren._hills_elev_rad = np.radians(np.clip(e, 0.05, 2.2) * 0.9)
    hill_fog = min(1.0, 0.55 + 0.9 * w.fog_density)
    ren._hills_rgb = mix_rgb(scale_rgb(HILLS, w.ground_light), w.fog_rgb, hill_fog)
    ren._hills_visible = hill_fog < 0.97
    # The plain ends where the hills stand, so the ground's haze stops at theirs: land meets sky
    # in the hills' colour rather than with a sky-coloured seam.
    ren._ground_fog_cap = hill_fog if ren._hills_visible else 1.0
    step = max(3.0, W / 90.0)
    ren._hills_u = np.concatenate([np.arange(-2.0, W + 2.0, step), [W + 2.0]])


def build_clouds(ren, elev_rad: np.ndarray) -> None:
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
    w, cam = ren.weather, ren.camera
    ren._sky_pano = None
    hr = len(elev_rad)
    if hr == 0 or w.cloudiness < 0.05 or w.fog_density > 0.4:
        return
    P = int(round(2.0 * math.pi * cam.focal_px))  # one panorama column per image pixel at the centre
    rng = np.random.default_rng((ren.seed, 271828))
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
    cover = smoothstep((noise - th + 0.12) / 0.3) * min(1.0, 0.3 + w.cloudiness)
    # Far clouds melt into the haze near the horizon.
    cover *= 1.0 - np.exp(-np.degrees(e) / 2.5)
    sky = sky_rgb(w, elev_rad)[:, None, :]
    light = max(w.ground_light)
    lit = np.array([255.0, 255.0, 255.0]) * min(1.0, 0.25 + 0.75 * light)
    if w.glare > 0:
        lit = lit * np.array([1.0, 0.78, 0.62])  # sunset clouds glow warm
    # Thicker parts of a cloud are greyer underneath.
    body = lit * (0.95 - 0.35 * smoothstep((noise - th) / 0.5))[..., None]
    cloud = body * 0.8 + sky * 0.2
    pano = sky + (cloud - sky) * cover[..., None]
    pano = np.clip(np.rint(pano), 0, 255).astype(np.uint8)
    # Repeated past its end by an image width: every slice is contiguous (a very wide lens sees
    # more than the whole circle).
    reps = 2 + ren.width_px // P
    ren._sky_pano = np.ascontiguousarray(np.tile(pano, (1, reps, 1))[:, :P + ren.width_px])
    ren._sky_period = P


def draw_sky(ren, rgb: np.ndarray, sem: np.ndarray, yaw: float) -> None:
    """The sky rows (``rgb``/``sem`` are the rows above the horizon): the panorama's slice, then the hills."""
    if ren._sky_pano is not None:
        # Column j of the panorama looks toward azimuth -2 pi j / P; image column u toward
        # yaw - (u + 0.5 - cx) / focal.
        P = ren._sky_period
        start = int(round(0.5 - ren.camera.cx_px - yaw * P / (2.0 * math.pi))) % P
        rgb[:] = ren._sky_pano[:, start:start + ren.width_px]
    draw_hills(ren, rgb, sem, yaw)


def draw_hills(ren, rgb: np.ndarray, sem: np.ndarray, yaw: float) -> None:
    """The distant skyline: one polygon over the columns, at world azimuths of the heading."""
    if not ren._hills_visible:
        return
    cam = ren.camera
    u = ren._hills_u
    phi = np.arctan((u - cam.cx_px) / cam.focal_px * math.cos(cam.pitch_rad))  # right of the heading
    # The table is uniform in azimuth: interpolate by index (np.interp with a period sorts every call).
    table = ren._hills_elev_rad
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
    poly = [np.rint((pts - 0.5) * ONE).astype(np.int32)]
    cv2.fillPoly(rgb, poly, ren._hills_rgb, AA, SHIFT)
    cv2.fillPoly(sem, poly, L_TERRAIN, HARD, SHIFT)


def sun_uv(ren) -> Optional[Tuple[float, float]]:
    """The sun's image position ``(u, v)`` in pixels, or None when it is behind the camera."""
    sx, sy, sz = ren.weather.sun_direction
    o = ren.camera._o
    d, r, u = ren.camera.to_camera(o[0] + sx, o[1] + sy, o[2] + sz)
    if d <= 0.05:
        return None
    uu, vv = ren.camera.image_from_camera(d, r, u)
    return float(uu), float(vv)


def draw_sun(ren, rgb: np.ndarray) -> None:
    """The sun's disc, when it is above the horizon and in front of the camera."""
    uv = sun_uv(ren, )
    if uv is None or uv[1] > ren.camera.horizon_v_px:
        return
    c = (int(round((uv[0] - 0.5) * ONE)), int(round((uv[1] - 0.5) * ONE)))
    col = mix_rgb(ren.weather.sky_horizon_rgb, (255, 244, 214), 0.85)
    cv2.circle(rgb, c, int(ren._sun_radius_px * ONE), col, -1, AA, SHIFT)


def build_glare(ren) -> None:
    """An additive glow sprite around a low sun (sunset), placed each frame at the sun."""
    w = ren.weather
    ren._glare = None
    if w.glare <= 0.0 or w.sun_elevation_deg < -2.0:
        return
    H, W = ren.height_px, ren.width_px
    r = int(max(8, 0.6 * max(W, H)))
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    rr = np.hypot(x, y) / max(W, H)
    glow = 0.55 * np.exp(-(rr / 0.07) ** 2) + 0.35 * np.exp(-(rr / 0.25) ** 2)
    # A faint horizontal streak, as a windscreen and lens smear a low sun.
    glow += 0.18 * np.exp(-(np.abs(y) / (0.012 * max(W, H))) ** 2) * np.exp(-(np.abs(x) / (0.45 * W)) ** 2)
    tint = np.array([255.0, 196.0, 120.0]) * w.glare
    ren._glare = np.clip(np.rint(glow[..., None] * tint), 0, 255).astype(np.uint8)
    ren._sun_radius_px = max(1.5, 0.012 * W)


def apply_glare(ren, rgb: np.ndarray) -> None:
    """Add the glare sprite centred on the sun (clipped to the frame)."""
    uv = sun_uv(ren, )
    if uv is None:
        return
    H, W = ren.height_px, ren.width_px
    g = ren._glare
    r = g.shape[0] // 2
    x0, y0 = int(round(uv[0])) - r, int(round(uv[1])) - r
    ax0, ay0 = max(0, x0), max(0, y0)
    ax1, ay1 = min(W, x0 + g.shape[1]), min(H, y0 + g.shape[0])
    if ax0 >= ax1 or ay0 >= ay1:
        return
    roi = rgb[ay0:ay1, ax0:ax1]
    cv2.add(roi, g[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0], dst=roi)
