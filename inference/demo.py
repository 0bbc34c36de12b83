"""``demo://``: a synthetic walkway scene rendered on the fly, with its ground truth.

People walk along a paved walkway; now and then one runs, falls or enters the forbidden area.
Used by ``make run``'s demo camera, the tests and the benchmarks. Parameters: ``DEMO_PARAMS``
in ``inference.source_urls``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .base import Frame, FrameSource, SourceError
from .source_urls import DEMO_KINDS, DEMO_PARAMS, parse_demo_params



@dataclass
class _Figure:
    """A person: a piecewise-linear path of the feet position over time, plus a pose."""

    times: np.ndarray  # seconds, increasing
    xs: np.ndarray  # feet x (pixels)
    ys: np.ndarray  # feet y (pixels)
    scale: float  # individual height factor
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    running_from: float = math.inf  # gait switches to running from this time
    fall: tuple[float, float, float, float] | None = None  # fall start, down, getup start, up
    fall_dir: int = 1
    kind: str | None = None  # anomaly kind for the scripted actor
    gt: tuple[float, float] | None = None
    cumdist: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self):
        seg = np.hypot(np.diff(self.xs), np.diff(self.ys))
        self.cumdist = np.concatenate([[0.0], np.cumsum(seg)])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def at(self, t: float) -> tuple[float, float, float]:
        x = float(np.interp(t, self.times, self.xs))
        y = float(np.interp(t, self.times, self.ys))
        d = float(np.interp(t, self.times, self.cumdist))
        return x, y, d


class DemoSource(FrameSource):
    """``demo://``: synthetic surveillance scene rendered on the fly (no files).

    A building, grass and a paved walkway in perspective, a marked forbidden zone on the near
    grass, sensor noise, and people (head, body, swinging legs and arms, size by perspective)
    walking along the walkway, entering and leaving. About every ``anomaly_every`` seconds of
    media time (uniformly 0.67-1.33x that; deterministic given ``seed``) one scripted person
    RUNS (3-4x walking speed), FALLS (lies still for several seconds, then gets up) or walks
    into the FORBIDDEN AREA. Infinite; media-time timestamps; ``is_live`` False.

    Ground truth: :attr:`current_anomaly` (the kind for the last frame returned, or None) and
    :meth:`anomaly_intervals` (``(start, end, kind)`` in media seconds).
    """

    is_live = False

    def __init__(self, url: str = "demo://", **overrides):
        super().__init__(url)
        params = parse_demo_params(url)
        for key, value in overrides.items():
            if key not in DEMO_PARAMS:
                raise ValueError(f"unknown demo parameter {key!r}")
            params[key] = DEMO_PARAMS[key][0](value)
        self.params = params
        self.seed = int(params["seed"])
        self.width = int(params["width"])
        self.height = int(params["height"])
        self.fps = float(params["fps"])
        self.anomaly_every = float(params["anomaly_every"])
        self.mean_people = float(params["people"])
        self.noise_level = float(params["noise"])
        self._opened = False
        self._index = 0
        self._current_anomaly: str | None = None
        self._plans: list[_Figure] = []  # scripted anomalies, in time order (lazily extended)
        self._layout()

    # ---- geometry -------------------------------------------------------------------------
    def _layout(self) -> None:
        W, H = self.width, self.height
        self.horizon = 0.24 * H  # building bottom
        self.walk_top = 0.44 * H
        self.walk_bottom = 0.76 * H
        self.lane_top = 0.47 * H
        self.lane_bottom = 0.72 * H
        # the forbidden zone lies on the near grass, off the walkway (feet positions)
        self.zone = (0.56 * W, 0.83 * H, 0.86 * W, 0.97 * H)  # x0, y0, x1, y1

    def person_height(self, y: float) -> float:
        """Pixel height of a standing person whose feet are at ``y`` (perspective)."""
        H = self.height
        y_far, y_near = 0.30 * H, 0.95 * H
        h_far, h_near = 0.10 * H, 0.34 * H
        return h_far + (h_near - h_far) * (y - y_far) / (y_near - y_far)

    def px_per_metre(self, y: float) -> float:
        return self.person_height(y) / 1.7

    @property
    def native_fps(self) -> float | None:
        return self.fps

    @property
    def current_anomaly(self) -> str | None:
        """The anomaly visible in the last frame returned (``running``/``fall``/``forbidden_area``)."""
        return self._current_anomaly

    # ---- FrameSource ------------------------------------------------------------------------
    def open(self) -> None:
        self._index = 0
        self._current_anomaly = None
        self._traffic_rng = np.random.default_rng([self.seed, 1])
        self._look_rng = np.random.default_rng([self.seed, 2])
        self._noise_rng = np.random.default_rng([self.seed, 3])
        self._figures: list[_Figure] = []
        self._next_plan = 0
        self._render_background()
        self._make_noise()
        # people already in view at t=0
        for _ in range(int(round(self.mean_people))):
            self._figures.append(self._walker(0.0, start_inside=True))
        self._opened = True

    def close(self) -> None:
        self._opened = False

    def read(self) -> Frame | None:
        if not self._opened:
            raise SourceError("demo source is not open")
        t = self._index / self.fps
        self._step(t)
        image = self._render(t)
        self._current_anomaly = self.anomaly_at(t)
        frame = Frame(image=image, timestamp=t, index=self._index)
        self._index += 1
        return frame

    def skip(self, n: int) -> None:
        if not self._opened:
            raise SourceError("demo source is not open")
        for _ in range(max(0, int(n))):
            self._step(self._index / self.fps)
            self._index += 1

    # ---- ground truth -----------------------------------------------------------------------
    def anomaly_intervals(self, until: float) -> list[tuple[float, float, str]]:
        """Scripted anomalies starting before ``until`` seconds: ``[(start, end, kind), ...]``."""
        self._plan_until(until)
        return [(p.gt[0], p.gt[1], p.kind) for p in self._plans if p.gt and p.gt[0] < until]

    def anomaly_at(self, t: float) -> str | None:
        """The anomaly kind at media time ``t`` (None when the scene is normal)."""
        self._plan_until(t + 1.0)
        for plan in self._plans:
            if plan.gt and plan.gt[0] <= t <= plan.gt[1]:
                return plan.kind
        return None

    def labels(self, n_frames: int) -> np.ndarray:
        """Per-frame ground truth (1 = anomalous) for the first ``n_frames`` frames."""
        times = np.arange(n_frames) / self.fps
        out = np.zeros(n_frames, dtype=np.uint8)
        for start, end, _ in self.anomaly_intervals(times[-1] + 1.0 if n_frames else 0.0):
            out[(times >= start) & (times <= end)] = 1
        return out

    # ---- simulation ---------------------------------------------------------------------------
    def _looks(self, rng) -> dict:
        shirts = [(40, 40, 160), (150, 60, 30), (30, 120, 40), (200, 200, 200), (40, 40, 40),
                  (30, 150, 200), (120, 50, 120), (90, 90, 90), (20, 80, 180), (160, 160, 60)]
        trousers = [(40, 30, 30), (80, 50, 20), (30, 30, 30), (110, 100, 90), (60, 60, 100)]
        skins = [(150, 180, 220), (110, 140, 190), (70, 95, 140), (180, 200, 230)]
        return {
            "shirt": shirts[int(rng.integers(len(shirts)))],
            "trousers": trousers[int(rng.integers(len(trousers)))],
            "skin": skins[int(rng.integers(len(skins)))],
            "scale": float(rng.uniform(0.88, 1.1)),
        }

    def _walker(self, t0: float, start_inside: bool = False) -> _Figure:
        rng = self._traffic_rng
        W = self.width
        y0 = float(rng.uniform(self.lane_top, self.lane_bottom))
        y1 = float(np.clip(y0 + rng.uniform(-0.04, 0.04) * self.height, self.lane_top, self.lane_bottom))
        direction = 1 if rng.random() < 0.5 else -1
        speed = float(rng.uniform(1.1, 1.6)) * self.px_per_metre((y0 + y1) / 2)
        margin = 0.1 * W
        x_start, x_end = (-margin, W + margin) if direction > 0 else (W + margin, -margin)
        if start_inside:
            x_start = float(rng.uniform(0.1 * W, 0.9 * W))
        duration = abs(x_end - x_start) / speed
        look = self._looks(rng)
        return _Figure(np.array([t0, t0 + duration]), np.array([x_start, x_end]), np.array([y0, y1]), **look)

    def _plan_until(self, t: float) -> None:
        """Script the anomalies that start before ``t`` (each from its own seeded RNG)."""
        while not self._plans or self._plans[-1].gt[0] < t:
            k = len(self._plans)
            if self.anomaly_every <= 0:
                return
            rng = np.random.default_rng([self.seed, 100 + k])
            previous_end = self._plans[-1].end if self._plans else 0.0
            start = (self._plans[-1].times[0] if self._plans else 0.0) + self.anomaly_every * rng.uniform(0.67, 1.33)
            start = max(start, previous_end + 3.0)
            block = np.random.default_rng([self.seed, 99, k // 3]).permutation(len(DEMO_KINDS))
            kind = DEMO_KINDS[int(block[k % 3])]
            self._plans.append(self._script(kind, start, rng))

    def _script(self, kind: str, t0: float, rng) -> _Figure:
        W = self.width
        look = self._looks(rng)
        direction = 1 if rng.random() < 0.5 else -1
        margin = 0.1 * W
        x_in, x_out = (-margin, W + margin) if direction > 0 else (W + margin, -margin)
        y = float(rng.uniform(self.lane_top + 0.03 * self.height, self.lane_bottom - 0.03 * self.height))
        walk = float(rng.uniform(1.2, 1.5)) * self.px_per_metre(y)

        if kind == "running":
            # walks in, then breaks into a run (3-4x walking speed) and leaves the scene
            x_run = x_in + direction * float(rng.uniform(0.15, 0.3)) * W
            t_run = t0 + abs(x_run - x_in) / walk
            run = walk * float(rng.uniform(3.0, 4.0))
            t_end = t_run + abs(x_out - x_run) / run
            fig = _Figure(np.array([t0, t_run, t_end]), np.array([x_in, x_run, x_out]), np.array([y, y, y]), **look)
            fig.running_from = t_run
            # visible until the body has left the frame
            leave_x = W + 0.05 * W if direction > 0 else -0.05 * W
            t_gone = t_run + abs(leave_x - x_run) / run
            fig.gt = (t_run, t_gone)
        elif kind == "fall":
            x_fall = x_in + direction * float(rng.uniform(0.35, 0.65)) * W
            t_fall = t0 + abs(x_fall - x_in) / walk
            lie = float(rng.uniform(5.0, 8.0))
            t_down, t_getup = t_fall + 0.7, t_fall + 0.7 + lie
            t_up = t_getup + 1.2
            t_end = t_up + abs(x_out - x_fall) / walk
            fig = _Figure(np.array([t0, t_fall, t_up, t_end]), np.array([x_in, x_fall, x_fall, x_out]),
                          np.array([y, y, y, y]), **look)
            fig.fall = (t_fall, t_down, t_getup, t_up)
            fig.fall_dir = direction
            fig.gt = (t_fall, t_up)
        else:  # forbidden_area: leaves the walkway, crosses the grass into the marked zone
            zx0, zy0, zx1, zy1 = self.zone
            y = float(rng.uniform(self.lane_bottom - 0.08 * self.height, self.lane_bottom))
            walk = float(rng.uniform(1.2, 1.5)) * self.px_per_metre(y)
            target = (float(rng.uniform(zx0 + 0.2 * (zx1 - zx0), zx1 - 0.2 * (zx1 - zx0))),
                      float(rng.uniform(zy0 + 0.3 * (zy1 - zy0), zy1 - 0.2 * (zy1 - zy0))))
            x_turn = target[0] - direction * float(rng.uniform(0.06, 0.12)) * W
            wander = (float(np.clip(target[0] + direction * rng.uniform(0.03, 0.08) * W, zx0, zx1)),
                      float(np.clip(target[1] + rng.uniform(-0.03, 0.03) * self.height, zy0, zy1)))
            t_turn = t0 + abs(x_turn - x_in) / walk
            zone_speed = float(rng.uniform(1.0, 1.3)) * self.px_per_metre(target[1])
            t_in = t_turn + math.hypot(target[0] - x_turn, target[1] - y) / zone_speed
            t_stand = t_in + float(rng.uniform(1.5, 3.0))  # stands still in the zone for a moment
            t_wander = t_stand + math.hypot(wander[0] - target[0], wander[1] - target[1]) / (0.6 * zone_speed)
            x_back = wander[0] + direction * 0.08 * W
            t_back = t_wander + math.hypot(x_back - wander[0], y - wander[1]) / zone_speed
            t_end = t_back + abs(x_out - x_back) / walk
            fig = _Figure(
                np.array([t0, t_turn, t_in, t_stand, t_wander, t_back, t_end]),
                np.array([x_in, x_turn, target[0], target[0], wander[0], x_back, x_out]),
                np.array([y, y, target[1], target[1], wander[1], y, y]),
                **look,
            )
            fig.gt = (t_turn, t_back)
        fig.kind = kind
        fig.gt = (float(fig.gt[0]), float(fig.gt[1]))
        return fig

    def _step(self, t: float) -> None:
        dt = 1.0 / self.fps
        self._figures = [f for f in self._figures if f.end >= t]
        # Poisson arrivals so that about `people` walkers are in view (crossing takes ~W/speed)
        crossing = 1.2 * self.width / (1.35 * self.px_per_metre((self.lane_top + self.lane_bottom) / 2))
        rate = self.mean_people / crossing
        if self._traffic_rng.random() < rate * dt:
            self._figures.append(self._walker(t))
        self._plan_until(t + dt)
        while self._next_plan < len(self._plans) and self._plans[self._next_plan].times[0] <= t:
            self._figures.append(self._plans[self._next_plan])
            self._next_plan += 1

    # ---- rendering ----------------------------------------------------------------------------
    def _render_background(self) -> None:
        W, H = self.width, self.height
        rng = np.random.default_rng([self.seed, 4])
        img = np.zeros((H, W, 3), np.uint8)
        hz, wt, wb = int(self.horizon), int(self.walk_top), int(self.walk_bottom)
        # building with windows
        img[:hz] = (120, 125, 135)
        win_w, win_h = max(4, W // 22), max(4, hz // 3)
        for x in range(W // 40, W - win_w, int(win_w * 1.8)):
            for y in (hz // 6, hz // 6 + int(win_h * 1.4)):
                if y + win_h < hz:
                    shade = int(rng.integers(50, 90))
                    cv2.rectangle(img, (x, y), (x + win_w, y + win_h), (shade + 10, shade, shade - 10), -1)
        # grass: green with coarse blotches and fine texture
        img[hz:] = (60, 120, 70)
        blotch = cv2.resize(rng.normal(0, 1, (max(2, H // 24), max(2, W // 24))).astype(np.float32), (W, H - hz),
                            interpolation=cv2.INTER_CUBIC)
        fine = rng.normal(0, 1, (H - hz, W)).astype(np.float32)
        tex = 10 * blotch + 6 * fine
        img[hz:] = np.clip(img[hz:].astype(np.float32) + tex[..., None] * np.array([0.6, 1.0, 0.6]), 0, 255)
        # walkway: light paving slabs in perspective
        pts = np.array([[0, wt], [W, wt - int(0.02 * H)], [W, wb], [0, wb + int(0.02 * H)]], np.int32)
        walk_mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(walk_mask, [pts], 255)
        pave = np.full((H, W), 165, np.float32) + 5 * rng.normal(0, 1, (H, W)).astype(np.float32)
        paved = np.clip(pave, 0, 255).astype(np.uint8)
        paved = cv2.merge([paved, paved, (paved * 0.97).astype(np.uint8)])
        img[walk_mask > 0] = paved[walk_mask > 0]
        vanish_x = W / 2
        for k in range(-12, 13):  # slab joints converging to a vanishing point
            x_bottom = vanish_x + k * W / 8
            x_top = vanish_x + k * W / 14
            cv2.line(img, (int(x_top), wt), (int(x_bottom), wb), (140, 140, 135), 1, cv2.LINE_AA)
        y = wt
        gap = max(3, int(0.02 * H))
        while y < wb:
            cv2.line(img, (0, y), (W, y - int(0.02 * H * (1 - (y - wt) / (wb - wt)))), (145, 145, 140), 1)
            y += gap
            gap = int(gap * 1.18) + 1
        # forbidden zone: red dashed outline, hatching and a sign post
        x0, y0, x1, y1 = (int(v) for v in self.zone)
        zone_img = img.copy()
        for xx in range(x0 - (y1 - y0), x1, max(6, W // 60)):
            cv2.line(zone_img, (xx, y1), (xx + (y1 - y0), y0), (40, 40, 170), 1, cv2.LINE_AA)
        zmask = np.zeros((H, W), np.uint8)
        cv2.rectangle(zmask, (x0, y0), (x1, y1), 255, -1)
        img[zmask > 0] = zone_img[zmask > 0]
        dash = max(4, W // 80)
        for xx in range(x0, x1, 2 * dash):
            cv2.line(img, (xx, y0), (min(xx + dash, x1), y0), (0, 0, 220), 2)
            cv2.line(img, (xx, y1), (min(xx + dash, x1), y1), (0, 0, 220), 2)
        for yy in range(y0, y1, 2 * dash):
            cv2.line(img, (x0, yy), (x0, min(yy + dash, y1)), (0, 0, 220), 2)
            cv2.line(img, (x1, yy), (x1, min(yy + dash, y1)), (0, 0, 220), 2)
        sign_h = int(self.person_height(y0) * 0.45)
        sx = x1 - max(6, W // 50)
        cv2.line(img, (sx, y1 - 2), (sx, y1 - 2 - sign_h), (60, 60, 60), 2)
        cv2.rectangle(img, (sx - sign_h // 5, y1 - 2 - sign_h), (sx + sign_h // 5, y1 - 2 - sign_h + sign_h // 3),
                      (0, 0, 200), -1)
        self._background = img

    def _make_noise(self) -> None:
        """A few precomputed noise frames, picked at random per frame (rendering stays cheap)."""
        k = self.noise_level
        H, W = self.height, self.width
        if k <= 0:
            self._noise = None
            self._base = self._background
            return
        offset = int(math.ceil(3 * k))
        self._base = cv2.subtract(self._background, np.full_like(self._background, offset))
        noise = self._noise_rng.normal(offset, k, (6, H, W, 1))
        noise = np.clip(noise, 0, 2 * offset).astype(np.uint8)
        self._noise = [np.repeat(n, 3, axis=2) for n in noise]
        # which noise frame each frame index uses: fixed by the seed, so skip() and read() agree
        self._noise_order = self._noise_rng.integers(len(self._noise), size=997)

    def _render(self, t: float) -> np.ndarray:
        if self._noise is not None:
            img = cv2.add(self._base, self._noise[int(self._noise_order[self._index % len(self._noise_order)])])
        else:
            img = self._background.copy()
        for fig in sorted((f for f in self._figures if f.times[0] <= t <= f.end), key=lambda f: f.at(t)[1]):
            self._draw_person(img, fig, t)
        return img

    def _draw_person(self, img: np.ndarray, fig: _Figure, t: float) -> None:
        x, y, dist = fig.at(t)
        h = self.person_height(y) * fig.scale
        if h < 4:
            return
        running = t >= fig.running_from
        # pose angle: 0 upright, 90 lying (rotating about the feet, forwards)
        angle = 0.0
        moving = True
        if fig.fall is not None:
            fs, fd, gs, gu = fig.fall
            if fs <= t < fd:
                angle = 90.0 * (t - fs) / (fd - fs)
            elif fd <= t < gs:
                angle = 90.0
            elif gs <= t < gu:
                angle = 90.0 * (1 - (t - gs) / (gu - gs))
            moving = not (fs <= t < gu)
        theta = math.radians(angle) * fig.fall_dir
        c, s = math.cos(theta), math.sin(theta)

        def P(u: float, v: float) -> tuple[int, int]:
            # u: sideways, v: up (in person heights); rotate then map to image (y down)
            ru = u * c + v * s
            rv = -u * s + v * c
            return int(round(x + ru * h)), int(round(y - rv * h))

        stride = 0.75 if not running else 1.6  # in person heights per gait cycle
        phase = 2 * math.pi * dist / (stride * h) if moving else 0.0
        swing = (0.35 if running else 0.22) * math.sin(phase) if moving else 0.0
        arm = -swing * 0.8
        lw = max(1, int(round(h * 0.075)))
        bw = max(2, int(round(h * 0.16)))
        hip, neck = (0.0, 0.5), (0.0, 0.82)
        # shadow
        if angle < 45:
            cv2.ellipse(img, (int(x), int(y)), (max(2, int(h * 0.18)), max(1, int(h * 0.04))), 0, 0, 360,
                        (60, 70, 60) if not self.walk_top <= y <= self.walk_bottom else (110, 110, 110), -1)
        # legs (far leg first)
        for sgn, shade in ((-1, 0.75), (1, 1.0)):
            col = tuple(int(ch * shade) for ch in fig.trousers)
            knee = (sgn * swing * 0.25, 0.27)
            foot = (sgn * swing * 0.5, 0.02 if not running else 0.05 + 0.05 * max(0.0, sgn * math.cos(phase)))
            cv2.line(img, P(*hip), P(*knee), col, lw + 1)
            cv2.line(img, P(*knee), P(*foot), col, lw)
        # body
        cv2.line(img, P(*hip), P(*neck), fig.shirt, bw)
        # arms
        for sgn in (-1, 1):
            hand = (sgn * arm * 0.45 + 0.02, 0.5)
            cv2.line(img, P(0.0, 0.8), P(*hand), tuple(int(ch * 0.85) for ch in fig.shirt), max(1, lw - 1))
        # head
        cv2.circle(img, P(0.0, 0.91), max(2, int(h * 0.075)), fig.skin, -1)
