"""Animate the mouth and jaw of a real face photo from mouth-shape parameters.

The photo's 68 landmarks are found once. For each frame, the lip and jaw points move (the lower
lip and chin down with openness, the corners out with spread and in with rounding), and the
photo is warped so that those points land where they should: a backward displacement field,
interpolated from the moved points by Gaussian radial basis functions (eyes, nose and upper
jaw pinned), evaluated on a coarse grid and applied with one `cv2.remap`. A dark mouth cavity
with a hint of teeth and tongue is then painted inside the moved inner-lip outline, so that an
open mouth looks open (and a landmark detector measures the gap).

Every clip also gets its own small head pose (rotation, scale, shift, a slow drift) and colour
(white balance, brightness, contrast), folded into the same remap and a per-channel lookup table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from talkface.errors import NoFaceError, TalkfaceError
from talkface.faces import get_extractor, similarity_transform

FRAME_SIZE = 256
# DESIGN: rows 20-260, columns 110-350 of skimage's astronaut are a face-centred 240² region.
ASTRONAUT_CROP = (20, 260, 110, 350)  # top, bottom, left, right

UPPER_INNER, LOWER_INNER = (61, 62, 63), (67, 66, 65)  # facing pairs of the inner lip
MAX_GAP = 0.55  # inner-lip gap at openness 1, in mouth widths
JAW_FOLLOW = 0.7  # the chin drops this fraction of the lower lip's drop
UPPER_LIFT = 0.12  # the upper lip rises this fraction of the gap
FIELD_STEP = 4  # the displacement field is evaluated every 4 output pixels, then interpolated

# The points that never move (brows, nose, eyes, upper jaw): they pin the warp in place.
_PINNED = tuple(range(0, 3)) + tuple(range(14, 17)) + tuple(range(17, 48))
# The points that move: lower jaw and lips; plus midpoints of lip and chin (lower lip 55-59
# with jaw 10-6) so the skin between them moves with them instead of sagging.
_MOVING = tuple(range(4, 13)) + tuple(range(48, 68))
_CHIN_PAIRS = ((55, 10), (56, 9), (57, 8), (58, 7), (59, 6))


@dataclass(frozen=True)
class ClipLook:
    """One clip's head pose and colour; constant, plus a slow sinusoidal head drift."""

    rotation_deg: float = 0.0
    scale: float = 1.0
    shift_x: float = 0.0
    shift_y: float = 0.0
    drift_deg: float = 0.0  # amplitude of the slow rotation drift
    drift_px: float = 0.0  # amplitude of the slow translation drift
    drift_period_s: float = 3.0
    drift_phase: float = 0.0
    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel white balance x brightness
    contrast: float = 1.0
    gamma: float = 1.0

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else [round(x, 4) for x in v]) for k, v in asdict(self).items()}


def random_look(rng: np.random.Generator) -> ClipLook:
    """Small, plausible variations: a few degrees, a few percent, a few pixels."""
    brightness = rng.uniform(0.85, 1.15)
    balance = rng.uniform(0.94, 1.06, size=3)
    return ClipLook(
        rotation_deg=float(rng.uniform(-4.0, 4.0)),
        scale=float(rng.uniform(0.93, 1.07)),
        shift_x=float(rng.uniform(-8.0, 8.0)),
        shift_y=float(rng.uniform(-6.0, 6.0)),
        drift_deg=float(rng.uniform(0.0, 1.0)),
        drift_px=float(rng.uniform(0.0, 2.0)),
        drift_period_s=float(rng.uniform(1.5, 4.0)),
        drift_phase=float(rng.uniform(0.0, 2 * np.pi)),
        gains=tuple(float(g) for g in brightness * balance / balance.mean()),
        contrast=float(rng.uniform(0.9, 1.1)),
        gamma=float(rng.uniform(0.9, 1.1)),
    )


class FaceRig:
    """A face photo framed like the built-in sample (256², face centred), ready to animate.

    `image` is any RGB photo; `to_frame` (2x3) takes its pixels to the 256² frame; `landmarks`
    are the 68 points in frame pixels.
    """

    def __init__(self, image: np.ndarray, to_frame: np.ndarray, landmarks: np.ndarray, name: str = "face"):
        self.name = name
        self.image, self.to_frame = _reduce_for_sampling(image, np.asarray(to_frame, np.float64))
        self.from_frame = cv2.invertAffineTransform(self.to_frame)
        self.landmarks = np.asarray(landmarks, np.float64)
        mouth = self.landmarks
        self.mouth_width = float(np.linalg.norm(mouth[54] - mouth[48]))
        self.rest_gap = inner_lip_gap(mouth)
        self.sigma = 0.35 * self.mouth_width
        w = self.mouth_width
        below = self.landmarks[8] + np.array([[0.0, 1.3], [-0.8, 1.1], [0.8, 1.1]]) * w  # the neck
        beside = self.landmarks[[4, 12]] + np.array([[-0.6, 0.0], [0.6, 0.0]]) * w  # the cheeks
        self._pins = np.vstack([self.landmarks[list(_PINNED)], below, beside])
        grid = (np.arange(FRAME_SIZE // FIELD_STEP) + 0.5) * FIELD_STEP - 0.5
        self._grid_x, self._grid_y = np.meshgrid(grid, grid)
        pixels = np.arange(FRAME_SIZE, dtype=np.float32)
        self._pix_x, self._pix_y = np.meshgrid(pixels, pixels)

    # ---- the mouth model -------------------------------------------------------------------

    def moved_landmarks(self, openness: float, spread: float, rounding: float) -> np.ndarray:
        """The 68 points (frame pixels, before the head pose) for one mouth shape."""
        points = self.landmarks.copy()
        w = self.mouth_width
        gap = float(np.clip(openness, 0.0, 1.0)) * MAX_GAP * w
        lift = UPPER_LIFT * gap
        drop = gap - lift - self.rest_gap  # the lower lip also closes the photo's own gap
        jaw = JAW_FOLLOW * (gap - lift)
        protrude = 0.06 * w * rounding

        points[[50, 51, 52, 61, 62, 63], 1] -= lift + protrude * np.array([1, 1, 1, 0, 0, 0])
        points[[49, 53], 1] -= 0.6 * lift + 0.5 * protrude
        points[[56, 57, 58, 65, 66, 67], 1] += drop + protrude * np.array([1, 1, 1, 0, 0, 0])
        points[[55, 59], 1] += 0.8 * drop + 0.5 * protrude
        for index, weight in zip(range(4, 13), (0.15, 0.4, 0.7, 0.9, 1.0, 0.9, 0.7, 0.4, 0.15)):
            points[index, 1] += weight * jaw

        # Corners: out with spread, in with rounding (inner corners more: a rounder opening),
        # a little in and down as the jaw opens.
        centre_x = (self.landmarks[48, 0] + self.landmarks[54, 0]) / 2
        outer = (0.10 * spread - 0.16 * rounding - 0.04 * openness) * w
        inner = (0.10 * spread - 0.22 * rounding - 0.05 * openness) * w
        for index, amount in ((48, outer), (54, outer), (60, inner), (64, inner)):
            side = np.sign(self.landmarks[index, 0] - centre_x)
            points[index, 0] += side * amount
            points[index, 1] += 0.3 * (gap - lift) - 0.04 * w * spread
        for index, amount in ((49, outer), (53, outer), (59, outer), (55, outer), (61, inner), (63, inner), (67, inner), (65, inner)):
            side = np.sign(self.landmarks[index, 0] - centre_x)
            points[index, 0] += 0.5 * side * amount
        return points

    # ---- rendering -------------------------------------------------------------------------

    def render(self, openness: float, spread: float, rounding: float, look: ClipLook = ClipLook(), time_s: float = 0.0) -> np.ndarray:
        """One 256² RGB uint8 frame."""
        moved = self.moved_landmarks(openness, spread, rounding)
        pose = _pose_matrix(look, time_s)  # frame -> output pixels
        inverse = cv2.invertAffineTransform(pose)

        # Backward map: output pixel -> frame position (pose undone) -> minus the mouth
        # displacement -> photo pixel.
        grid_frame = _apply(inverse, self._grid_x, self._grid_y)
        field = self._displacement(moved, *grid_frame)
        field = cv2.resize(field, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_LINEAR)
        frame_x, frame_y = _apply(inverse, self._pix_x, self._pix_y)
        frame_x -= field[..., 0]
        frame_y -= field[..., 1]
        map_x, map_y = _apply(self.from_frame, frame_x, frame_y)
        image = cv2.remap(
            self.image, map_x.astype(np.float32), map_y.astype(np.float32),
            interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101,
        )
        inner = _apply_points(pose, moved[60:68])
        _paint_mouth(image, inner, self.mouth_width * look.scale)
        return cv2.LUT(image, _colour_table(look))

    def _displacement(self, moved: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """(h, w, 2) backward displacement at frame positions (xs, ys), zero at the pins."""
        moving, chin = list(_MOVING), np.array(_CHIN_PAIRS)
        mid_moved = (moved[chin[:, 0]] + moved[chin[:, 1]]) / 2
        mid_rest = (self.landmarks[chin[:, 0]] + self.landmarks[chin[:, 1]]) / 2
        centres = np.vstack([moved[moving], mid_moved, self._pins])
        values = np.vstack([moved[moving] - self.landmarks[moving], mid_moved - mid_rest, np.zeros_like(self._pins)])
        kernel = _gaussian(centres, centres, self.sigma) + 1e-3 * np.eye(len(centres))
        weights = np.linalg.solve(kernel, values)
        points = np.stack([xs.ravel(), ys.ravel()], axis=1)
        field = _gaussian(points, centres, self.sigma) @ weights
        return field.reshape(*xs.shape, 2).astype(np.float32)

    def render_clip(self, openness, spread, rounding, look: ClipLook, fps: int) -> np.ndarray:
        """(T, 256, 256, 3) uint8 frames for per-frame mouth shapes."""
        return np.stack([
            self.render(o, s, r, look, i / fps) for i, (o, s, r) in enumerate(zip(openness, spread, rounding))
        ])


def inner_lip_gap(landmarks: np.ndarray) -> float:
    """Mean distance between the facing inner-lip points 61-63 and 67-65 (pixels)."""
    landmarks = np.asarray(landmarks, np.float64)
    return float(np.linalg.norm(landmarks[list(UPPER_INNER)] - landmarks[list(LOWER_INNER)], axis=1).mean())


# ---- building rigs ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def astronaut_rig() -> FaceRig:
    """skimage's astronaut photo, framed by the DESIGN crop (cached per process)."""
    from skimage import data

    image = data.astronaut()
    top, bottom, left, right = ASTRONAUT_CROP
    scale = FRAME_SIZE / (bottom - top)
    to_frame = np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]])
    crop = cv2.resize(image[top:bottom, left:right], (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_AREA)
    landmarks = get_extractor("dlib").landmarks(crop, name="the astronaut photo")
    return FaceRig(image, to_frame, landmarks, name="astronaut")


def photo_rig(image: np.ndarray, name: str) -> FaceRig:
    """Any photo with a face: framed so its eyes and nose sit where the astronaut's do."""
    reference = astronaut_rig().landmarks
    small, factor = _detection_size(image)
    try:
        landmarks = get_extractor("dlib").landmarks(small, name=name) / factor
    except NoFaceError:
        raise NoFaceError(f"no face found in {name}: give photos with one clear, frontal face") from None
    stable = list(range(27, 48))
    to_frame = similarity_transform(landmarks[stable], reference[stable])
    framed = _apply_points(to_frame, landmarks)
    rig = FaceRig(image, to_frame, framed, name=name)
    if rig.mouth_width < 20:
        raise TalkfaceError(f"{name}: the face's landmarks look wrong (mouth {rig.mouth_width:.0f} px wide)")
    return rig


def _detection_size(image: np.ndarray, longest: int = 1024) -> tuple[np.ndarray, float]:
    """Large photos are reduced before detection (HOG time grows with the area)."""
    factor = min(1.0, longest / max(image.shape[:2]))
    if factor == 1.0:
        return image, 1.0
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def _reduce_for_sampling(image: np.ndarray, to_frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shrink a photo much larger than the frame first: bilinear remap alone would alias."""
    scale = float(np.sqrt(abs(np.linalg.det(to_frame[:, :2]))))
    if scale >= 0.7:
        return np.ascontiguousarray(image), to_frame
    factor = scale * 1.25
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    reduced = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    actual = np.array([size[0] / image.shape[1], size[1] / image.shape[0]])
    adjusted = to_frame.copy()
    adjusted[:, 0] /= actual[0]
    adjusted[:, 1] /= actual[1]
    return reduced, adjusted


# ---- geometry helpers -------------------------------------------------------------------------


def _gaussian(points: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
    return np.exp(-d2 / (2 * sigma * sigma))


def _apply(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2],
        matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2],
    )


def _apply_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def _pose_matrix(look: ClipLook, time_s: float) -> np.ndarray:
    """Rotation and scale about the frame centre, then the shift; drift varies slowly in time."""
    wave = np.sin(2 * np.pi * time_s / look.drift_period_s + look.drift_phase)
    wave2 = np.cos(2 * np.pi * time_s / (1.37 * look.drift_period_s) + look.drift_phase)
    angle = look.rotation_deg + look.drift_deg * wave
    centre = (FRAME_SIZE / 2 - 0.5, FRAME_SIZE / 2 - 0.5)
    matrix = cv2.getRotationMatrix2D(centre, angle, look.scale)
    matrix[0, 2] += look.shift_x + look.drift_px * wave2
    matrix[1, 2] += look.shift_y + 0.5 * look.drift_px * wave
    return matrix


@lru_cache(maxsize=64)
def _colour_table_cached(gains: tuple, contrast: float, gamma: float) -> np.ndarray:
    levels = np.arange(256, dtype=np.float64) / 255.0
    channels = []
    for gain in gains:
        value = 0.5 + (levels**gamma - 0.5) * contrast
        channels.append(np.clip(np.round(value * gain * 255.0), 0, 255))
    return np.stack(channels, axis=1).astype(np.uint8)[:, None, :]  # (256, 1, 3) for cv2.LUT


def _colour_table(look: ClipLook) -> np.ndarray:
    return _colour_table_cached(tuple(look.gains), look.contrast, look.gamma)


# ---- the inside of the mouth ------------------------------------------------------------------

CAVITY = np.array([45, 14, 20], np.float32)
TONGUE = np.array([150, 62, 70], np.float32)
TEETH = np.array([222, 214, 200], np.float32)
SUBPIXEL = 8  # cv2.fillPoly `shift=3`: polygon corners at 1/8 pixel


def _paint_mouth(image: np.ndarray, inner: np.ndarray, mouth_width: float) -> None:
    """Paint the cavity inside the inner-lip outline (points 60-67, output pixels), in place.

    Teeth show under the upper lip and the tongue above the lower lip, both growing with the
    opening; all edges are anti-aliased so the outline moves smoothly between frames.
    """
    gap = float(np.linalg.norm(inner[[1, 2, 3]] - inner[[7, 6, 5]], axis=1).mean())
    if gap < 0.6:
        return
    left, top = np.floor(inner.min(axis=0)).astype(int) - 3
    right, bottom = np.ceil(inner.max(axis=0)).astype(int) + 4
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, image.shape[1]), min(bottom, image.shape[0])
    if right - left < 2 or bottom - top < 2:
        return
    origin = np.array([left, top], np.float64)
    size = (bottom - top, right - left)
    local = inner - origin

    cavity = _polygon_mask(local, size)
    upper = local[[0, 1, 2, 3, 4]]  # 60-64, left corner to right corner along the upper lip
    lower = local[[4, 5, 6, 7, 0]]  # 64-67, 60: right corner back along the lower lip
    teeth_height = min(0.30 * gap, 0.10 * mouth_width)
    teeth = _band_mask(upper, +teeth_height, size, narrow=0.12) * cavity
    tongue_height = 0.22 * gap
    tongue = _band_mask(lower, -tongue_height, size, narrow=0.25) * cavity * np.clip((gap - 4.0) / 8.0, 0.0, 1.0)

    region = image[top:bottom, left:right].astype(np.float32)
    # Darker towards the middle of the opening: a cavity, not a flat patch.
    depth = cv2.GaussianBlur(cavity, (0, 0), max(0.8, 0.12 * gap))
    shade = (0.75 + 0.5 * (1.0 - depth))[..., None]
    fill = CAVITY * shade
    fill = fill * (1 - tongue[..., None]) + TONGUE * tongue[..., None] * shade
    fill = fill * (1 - teeth[..., None]) + TEETH * teeth[..., None]
    alpha = cavity[..., None]
    image[top:bottom, left:right] = np.clip(region * (1 - alpha) + fill * alpha, 0, 255).astype(np.uint8)


def _polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    corners = np.round(points * SUBPIXEL).astype(np.int32)
    cv2.fillPoly(mask, [corners], 255, lineType=cv2.LINE_AA, shift=3)
    return mask.astype(np.float32) / 255.0


def _band_mask(edge: np.ndarray, offset: float, size: tuple[int, int], narrow: float) -> np.ndarray:
    """The band between a lip edge and the same edge moved `offset` px down (up if negative),
    pulled in by `narrow` of its width at both ends (teeth and tongue stop short of the corners)."""
    centre_x = edge[:, 0].mean()
    shifted = edge.copy()
    shifted[:, 0] = centre_x + (edge[:, 0] - centre_x) * (1.0 - narrow)
    shifted[:, 1] += offset
    band = np.vstack([edge, shifted[::-1]])
    return _polygon_mask(band, size)
