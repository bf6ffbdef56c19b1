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

import cv2
import numpy as np

from talkface.errors import NoFaceError, TalkfaceError
from talkface.faces import get_extractor, similarity_transform
from talkface.faces.layout import INNER_LIPS, INNER_MOUTH_CORNERS, JAW, MOUTH, MOUTH_CORNERS, OUTER_LIPS, STABLE, span

FRAME_SIZE = 256
# DESIGN: rows 20-260, columns 110-350 of skimage's astronaut are a face-centred 240² region.
ASTRONAUT_CROP = (20, 260, 110, 350)  # top, bottom, left, right

# Facing pairs of the inner lip: 61-63 above, 67-65 below.
UPPER_INNER, LOWER_INNER = tuple(INNER_LIPS[1:4]), tuple(reversed(INNER_LIPS[5:]))
MAX_GAP = 0.45  # inner-lip gap at openness 1, in mouth widths
JAW_FOLLOW = 0.7  # the chin drops this fraction of the lower lip's drop
UPPER_LIFT = 0.12  # the upper lip rises this fraction of the gap
FIELD_STEP = 8  # displacement fields are evaluated every 8 output pixels, then interpolated
RBF_SIGMA = 0.35  # Gaussian width of the displacement fields, in mouth widths
RBF_SMOOTHING = 1e-2  # ridge term: keeps the fields smooth where control points crowd

# Opening a mouth tears the face along the lips, which one smooth field cannot do. So there are
# two fields: one moves the upper lip (used above the mouth line), one the lower lip and jaw
# (used below it); they share the mouth corners and the pinned points, so beyond the corners
# they agree and are blended smoothly. Inside the mouth the switch happens in the cavity, which
# is painted over.
_PINNED = tuple(JAW[:3]) + tuple(JAW[-3:]) + tuple(STABLE)  # upper jaw (0-2, 14-16), nose, eyes
_CORNERS = MOUTH_CORNERS + INNER_MOUTH_CORNERS  # 48, 54, 60, 64
_UPPER_LIP = tuple(OUTER_LIPS[1:6]) + UPPER_INNER  # 49-53, 61-63
_LOWER_LIP = tuple(OUTER_LIPS[7:]) + tuple(INNER_LIPS[5:])  # 55-59, 65-67
_JAW = tuple(JAW[4:13])  # the jaw below the cheeks, 4-12
# Midpoints of lower lip and jaw (55-59 with 10-6): the skin between them moves with them.
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
    are its 68 points in frame pixels.
    """

    def __init__(self, image: np.ndarray, to_frame: np.ndarray, landmarks: np.ndarray, name: str = "face"):
        self.name = name
        image, self.to_frame = _reduce_for_sampling(image, np.asarray(to_frame, np.float64))
        self.from_frame = cv2.invertAffineTransform(self.to_frame)
        landmarks = np.asarray(landmarks, np.float64)
        right, left = MOUTH_CORNERS
        self.mouth_width = float(np.linalg.norm(landmarks[left] - landmarks[right]))
        self.photo_gap = inner_lip_gap(landmarks)
        self.image, self.landmarks = _close_mouth(image, self.from_frame, landmarks)
        w = self.mouth_width
        self.sigma = RBF_SIGMA * w
        neck = self.landmarks[8] + np.array([[0.0, 1.3], [-0.8, 1.1], [0.8, 1.1]]) * w
        cheeks = self.landmarks[[4, 12]] + np.array([[-0.6, 0.0], [0.6, 0.0]]) * w
        self._pins = np.vstack([self.landmarks[list(_PINNED)], neck, cheeks])
        # The part of the frame a mouth movement can reach (frame pixels): lips and jaw, plus
        # the widest opening, plus 2.5 sigma (where the Gaussian fields have faded out).
        moving = self.landmarks[list(_JAW + _CORNERS + _UPPER_LIP + _LOWER_LIP)]
        reach = 2.5 * self.sigma + MAX_GAP * w
        self._reach = (moving.min(axis=0) - reach, moving.max(axis=0) + reach)

    # ---- the mouth model -------------------------------------------------------------------

    def moved_landmarks(self, openness: float, spread: float, rounding: float) -> np.ndarray:
        """The 68 points (frame pixels, before the head pose) for one mouth shape."""
        points = self.landmarks.copy()
        w = self.mouth_width
        openness = float(np.clip(openness, 0.0, 1.0))
        gap = openness * MAX_GAP * w
        lift = UPPER_LIFT * gap
        drop = gap - lift
        protrude = 0.05 * w * rounding  # pushed-out lips look fuller

        points[[50, 51, 52], 1] -= lift + protrude
        points[[61, 62, 63], 1] -= lift
        points[[61, 63], 1] += 0.1 * drop  # the upper lip's edge arcs down towards the corners
        points[[49, 53], 1] += 0.1 * drop - 0.7 * lift - 0.6 * protrude
        points[[56, 57, 58], 1] += drop + protrude
        points[66, 1] += drop
        points[[65, 67], 1] += 0.85 * drop  # a rounded lower lip, not a box
        points[[55, 59], 1] += 0.8 * drop + 0.6 * protrude
        for index, weight in zip(_JAW, (0.15, 0.4, 0.7, 0.9, 1.0, 0.9, 0.7, 0.4, 0.15), strict=True):
            points[index, 1] += weight * JAW_FOLLOW * drop

        # Corners: out with spread, in with rounding and a little as the jaw opens; they drop
        # with the jaw and rise with a spread (smile). Lip points near the corners follow
        # halfway, the inner ones more with rounding (a rounder opening).
        right, left = MOUTH_CORNERS
        centre_x = (self.landmarks[right, 0] + self.landmarks[left, 0]) / 2
        corner = (0.10 * spread - 0.16 * rounding - 0.04 * openness) * w
        for index in _CORNERS:
            points[index, 0] += np.sign(self.landmarks[index, 0] - centre_x) * corner
            points[index, 1] += (0.38 + 0.15 * rounding) * drop - 0.04 * w * spread
        for index, share in ((49, 0.5), (53, 0.5), (55, 0.5), (59, 0.5), (61, 0.7), (63, 0.7), (65, 0.7), (67, 0.7)):
            points[index, 0] += np.sign(self.landmarks[index, 0] - centre_x) * share * corner
        return points

    # ---- rendering -------------------------------------------------------------------------

    def render(
        self, openness: float, spread: float, rounding: float, look: ClipLook = ClipLook(), time_s: float = 0.0
    ) -> np.ndarray:
        """One 256² RGB uint8 frame."""
        moved = self.moved_landmarks(openness, spread, rounding)
        pose = _pose_matrix(look, time_s)  # frame pixels -> output pixels
        # Backward map: output pixel -> frame position (pose undone) -> minus the mouth
        # displacement -> photo pixel. Both steps are affine except the displacement, which
        # only exists in a window around the mouth.
        unpose = cv2.invertAffineTransform(pose)
        pix_x, pix_y = _pixel_grid()
        map_x, map_y = _apply(_compose(self.from_frame, unpose), pix_x, pix_y)
        top, bottom, left, right = self._mouth_window(pose)
        at_rest = max(openness, spread, rounding) < 1e-3  # nothing moves: no displacement
        if bottom > top and right > left and not at_rest:
            window = (slice(top, bottom), slice(left, right))
            shift_x, shift_y = self._displacement(moved, *_apply(unpose, pix_x[window], pix_y[window]))
            (a, b, _), (c, d, _) = self.from_frame.tolist()
            map_x[window] -= a * shift_x + b * shift_y
            map_y[window] -= c * shift_x + d * shift_y
        image = cv2.remap(self.image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _paint_mouth(image, _apply_points(pose, moved[span(INNER_LIPS)]), self.mouth_width * look.scale)
        return cv2.LUT(image, _colour_table(look))

    def render_clip(self, openness, spread, rounding, look: ClipLook, fps: int) -> np.ndarray:
        """(T, 256, 256, 3) uint8 frames for per-frame mouth shapes."""
        return np.stack(
            [
                self.render(o, s, r, look, i / fps)
                for i, (o, s, r) in enumerate(zip(openness, spread, rounding, strict=False))
            ]
        )

    def _mouth_window(self, pose: np.ndarray) -> tuple[int, int, int, int]:
        """Output rows/columns (multiples of FIELD_STEP) that the mouth's movement can reach."""
        (x0, y0), (x1, y1) = self._reach
        corners = _apply_points(pose, np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
        lo = np.clip(np.floor(corners.min(axis=0) / FIELD_STEP) * FIELD_STEP, 0, FRAME_SIZE).astype(int)
        hi = np.clip(np.ceil(corners.max(axis=0) / FIELD_STEP) * FIELD_STEP, 0, FRAME_SIZE).astype(int)
        return lo[1], hi[1], lo[0], hi[0]

    def _displacement(self, moved: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Backward displacement (dx, dy) at frame positions (xs, ys): where each pixel's
        content comes from, relative to it. The upper and lower fields meet at the lips."""
        height, width = xs.shape
        coarse = (width // FIELD_STEP, height // FIELD_STEP)
        # Block means of an affine grid are its values at the block centres, which is where
        # INTER_LINEAR puts the coarse samples when scaling back up.
        coarse_points = np.stack(
            [
                cv2.resize(xs, coarse, interpolation=cv2.INTER_AREA).ravel(),
                cv2.resize(ys, coarse, interpolation=cv2.INTER_AREA).ravel(),
            ],
            axis=1,
        ).astype(np.float64)

        chin = np.array(_CHIN_PAIRS)
        chin_moved = (moved[chin[:, 0]] + moved[chin[:, 1]]) / 2
        chin_rest = (self.landmarks[chin[:, 0]] + self.landmarks[chin[:, 1]]) / 2
        upper = list(_CORNERS + _UPPER_LIP)
        lower = list(_CORNERS + _LOWER_LIP + _JAW)
        fields = []
        for centres, values in (
            (moved[upper], moved[upper] - self.landmarks[upper]),
            (
                np.vstack([moved[lower], chin_moved]),
                np.vstack([moved[lower] - self.landmarks[lower], chin_moved - chin_rest]),
            ),
        ):
            centres = np.vstack([centres, self._pins])
            values = np.vstack([values, np.zeros_like(self._pins)])
            kernel = _gaussian(centres, centres, self.sigma) + RBF_SMOOTHING * np.eye(len(centres))
            field = _gaussian(coarse_points, centres, self.sigma) @ np.linalg.solve(kernel, values)
            field = field.reshape(coarse[1], coarse[0], 2).astype(np.float32)
            fields.append(cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR))
        # Which field applies: coarse everywhere, exact near the lips (their edges must be sharp).
        coarse_below = _below_mouth_line(moved, coarse_points[:, 0], coarse_points[:, 1])
        below = cv2.resize(coarse_below.reshape(coarse[1], coarse[0]), (width, height), interpolation=cv2.INTER_LINEAR)
        lips = moved[span(MOUTH)]
        (x0, y0), (x1, y1) = lips.min(axis=0) - 6, lips.max(axis=0) + 6
        near = (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        below[near] = _below_mouth_line(moved, xs[near], ys[near])
        field = fields[0] + (fields[1] - fields[0]) * below[..., None]
        return field[..., 0], field[..., 1]


def _below_mouth_line(moved: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """0 above the (moved) upper inner lip, 1 below the lower inner lip, a smooth ramp between.

    Beyond the mouth corners both lips are the corner's height and the ramp widens with the
    distance, because there the two fields agree and only need blending.
    """
    right, left = INNER_MOUTH_CORNERS
    upper = moved[right : left + 1]  # 60 -> 64 along the upper inner lip
    upper_x, upper_y = upper[:, 0], upper[:, 1]
    lower = moved[[right, *reversed(INNER_LIPS[4:])]]  # 60, 67, 66, 65, 64 along the lower one
    order_u, order_l = np.argsort(upper_x), np.argsort(lower[:, 0])
    y_top = np.interp(xs, upper_x[order_u], upper_y[order_u])
    y_bottom = np.interp(xs, lower[order_l, 0], lower[order_l, 1])
    outside = np.maximum(0.0, np.maximum(moved[right, 0] - xs, xs - moved[left, 0]))
    mid = (y_top + y_bottom) / 2
    half = np.maximum((y_bottom - y_top) / 2, 0.0) + 0.5 + 0.6 * outside
    t = np.clip((ys - mid) / (2 * half) + 0.5, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def _close_mouth(image: np.ndarray, from_frame: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo with its lips closed at rest, and the matching landmarks.

    A photo showing teeth (the astronaut smiles) cannot be closed by warping: the lips must
    meet. So the opening between the inner lips is filled from the surrounding lip colour
    (inpainting), and the inner-lip points move to the middle of the former gap.
    """
    landmarks = landmarks.copy()
    if inner_lip_gap(landmarks) > 1.0:
        polygon = _apply_points(from_frame, landmarks[span(INNER_LIPS)])
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(polygon * SUBPIXEL).astype(np.int32)], 255, cv2.LINE_8, shift=3)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
        image = cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)
    middle = (landmarks[list(UPPER_INNER)] + landmarks[list(LOWER_INNER)]) / 2
    landmarks[list(UPPER_INNER)] = middle
    landmarks[list(LOWER_INNER)] = middle
    return np.ascontiguousarray(image), landmarks


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
    stable = list(STABLE)
    to_frame = _zoom_to_fill(similarity_transform(landmarks[stable], reference[stable]), image.shape)
    framed = _apply_points(to_frame, landmarks)
    rig = FaceRig(image, to_frame, framed, name=name)
    if rig.mouth_width < 20:
        raise TalkfaceError(f"{name}: the face's landmarks look wrong (mouth {rig.mouth_width:.0f} px wide)")
    return rig


def _zoom_to_fill(to_frame: np.ndarray, photo_shape: tuple, max_zoom: float = 1.6) -> np.ndarray:
    """Zoom in (about the frame centre) until the frame, with a margin for the per-clip pose,
    lies inside the photo: a tight face crop then fills the frame instead of being padded.
    Beyond `max_zoom` the photo's border pixels are repeated instead."""
    height, width = photo_shape[:2]
    margin = 0.1 * FRAME_SIZE
    corners = np.array(
        [
            [-margin, -margin],
            [FRAME_SIZE + margin, -margin],
            [-margin, FRAME_SIZE + margin],
            [FRAME_SIZE + margin, FRAME_SIZE + margin],
        ]
    )
    centre = FRAME_SIZE / 2
    zoomed = to_frame
    for zoom in np.arange(1.0, max_zoom + 1e-6, 0.05):
        zoomed = np.vstack([to_frame * zoom, [0.0, 0.0, 1.0]])[:2]
        zoomed[:, 2] += centre * (1 - zoom)
        inside = _apply_points(cv2.invertAffineTransform(zoomed), corners)
        if inside.min() >= 0 and inside[:, 0].max() <= width - 1 and inside[:, 1].max() <= height - 1:
            break
    return zoomed


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
    """(points, centres) Gaussian kernel matrix; squared distances through one matrix product."""
    d2 = (points**2).sum(axis=1)[:, None] + (centres**2).sum(axis=1)[None, :] - 2.0 * points @ centres.T
    return np.exp(-np.maximum(d2, 0.0) / (2 * sigma * sigma))


def _apply(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 2x3 affine matrix applied to coordinate arrays (python floats keep float32 arrays float32)."""
    (a, b, c), (d, e, f) = np.asarray(matrix, np.float64).tolist()
    return a * xs + b * ys + c, d * xs + e * ys + f


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine matrix of `outer` after `inner`."""
    return (np.vstack([outer, [0.0, 0.0, 1.0]]) @ np.vstack([inner, [0.0, 0.0, 1.0]]))[:2]


@lru_cache(maxsize=1)
def _pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    """Output pixel coordinates (x, y), float32 (256, 256) each; read-only, shared."""
    pixels = np.arange(FRAME_SIZE, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(pixels, pixels)
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


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

CAVITY_EDGE = np.array([112, 46, 52], np.float32)  # lit inner lip / mouth wall
CAVITY_DEEP = np.array([34, 10, 14], np.float32)  # the back of the mouth
TONGUE = np.array([160, 78, 84], np.float32)
TEETH = np.array([190, 180, 166], np.float32)
SEAM = np.array([96, 44, 48], np.float32)  # the dark line where closed lips meet
SUBPIXEL = 8  # cv2.fillPoly `shift=3`: polygon corners at 1/8 pixel


def _paint_mouth(image: np.ndarray, inner: np.ndarray, mouth_width: float) -> None:
    """Paint the inside of the mouth within the inner-lip outline (points 60-67, output pixels).

    The outline is smoothed (Catmull-Rom through the points; the corners stay sharp). Inside:
    a cavity that darkens towards its middle, upper teeth under the upper lip and the tongue at
    the bottom, both growing with the opening. Closed lips get a soft dark seam. Everything is
    anti-aliased so the outline moves smoothly from frame to frame.
    """
    upper = _catmull_rom(inner[[0, 1, 2, 3, 4]])  # 60 -> 64 along the upper lip
    lower = _catmull_rom(inner[[4, 5, 6, 7, 0]])  # 64 -> 60 along the lower lip
    gap = float(np.linalg.norm(inner[[1, 2, 3]] - inner[[7, 6, 5]], axis=1).mean())
    left, top = np.floor(inner.min(axis=0)).astype(int) - 4
    right, bottom = np.ceil(inner.max(axis=0)).astype(int) + 5
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, image.shape[1]), min(bottom, image.shape[0])
    if right - left < 3 or bottom - top < 3:
        return
    origin = np.array([left, top], np.float64)
    size = (bottom - top, right - left)
    region = image[top:bottom, left:right].astype(np.float32)

    seam = _polyline_mask((upper + lower[::-1]) / 2 - origin, size, thickness=1)
    seam_alpha = (0.5 * seam * np.clip(1.5 - gap / 2.0, 0.0, 1.0))[..., None]
    region = region * (1 - seam_alpha) + SEAM * seam_alpha

    if gap > 0.3:
        cavity = _polygon_mask(np.vstack([upper, lower[1:-1]]) - origin, size)
        ys, xs = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)
        centre = (inner[[2, 6]].mean(axis=0) - origin).astype(np.float32)
        half_width = max(1.0, float(inner[4, 0] - inner[0, 0]) / 2)
        # Elliptic depth: 0 at the lips, 1 in the middle of the opening.
        r2 = ((xs - centre[0]) / half_width) ** 2 + ((ys - centre[1]) / max(1.0, gap / 2)) ** 2
        depth = np.clip(1.0 - r2, 0.0, 1.0)[..., None]
        fill = CAVITY_EDGE + (CAVITY_DEEP - CAVITY_EDGE) * np.sqrt(depth)

        # Tongue: a soft ellipse resting on the lower lip, seen once the mouth is open enough.
        tongue_r2 = ((xs - centre[0]) / (0.55 * half_width)) ** 2 + ((ys - centre[1] - 0.5 * gap) / (0.45 * gap)) ** 2
        tongue = np.clip(1.6 - 1.6 * tongue_r2, 0.0, 1.0) * float(np.clip((gap - 4.0) / 8.0, 0.0, 1.0))
        fill = fill + (TONGUE * (0.85 - 0.25 * depth) - fill) * tongue[..., None]

        # Upper teeth: a band under the upper lip, short of the corners, shaded at the sides.
        teeth_height = min(0.22 * gap, 0.06 * mouth_width)
        teeth = _teeth_mask(upper - origin, teeth_height, size)
        teeth = cv2.GaussianBlur(teeth, (0, 0), 0.6) * float(np.clip(gap / 4.0, 0.0, 0.9))
        side = np.clip(np.abs(xs - centre[0]) / half_width, 0.0, 1.0)
        teeth_colour = TEETH * (1.0 - 0.45 * side**2)[..., None]
        fill = fill + (teeth_colour - fill) * teeth[..., None]

        alpha = (cavity * min(1.0, gap / 1.5))[..., None]
        region = region * (1 - alpha) + fill * alpha
    image[top:bottom, left:right] = np.clip(region + 0.5, 0, 255).astype(np.uint8)


def _catmull_rom(points: np.ndarray, per_segment: int = 6) -> np.ndarray:
    """A smooth curve through `points` (end points repeated as their own neighbours)."""
    padded = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    pieces = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        pieces.append(
            0.5
            * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    pieces.append(points[-1:])
    return np.vstack(pieces)


def _polygon_mask(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, [np.round(points * SUBPIXEL).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=3)
    return mask.astype(np.float32) / 255.0


def _polyline_mask(points: np.ndarray, size: tuple[int, int], thickness: int) -> np.ndarray:
    mask = np.zeros(size, np.uint8)
    corners = np.round(points * SUBPIXEL).astype(np.int32)
    cv2.polylines(mask, [corners], False, 255, thickness, lineType=cv2.LINE_AA, shift=3)
    return mask.astype(np.float32) / 255.0


def _teeth_mask(upper: np.ndarray, height: float, size: tuple[int, int]) -> np.ndarray:
    """Under the upper lip's edge down to a smooth arc (a parabola fitted to that edge, lowered
    by `height`), stopping short of the corners: the row of upper teeth."""
    xs = upper[:, 0]
    arc = np.polyfit(xs, upper[:, 1], 2) if np.ptp(xs) > 1e-3 else np.array([0.0, 0.0, upper[:, 1].mean()])
    inner_xs = np.linspace(xs.min(), xs.max(), 12)
    inner_xs = inner_xs.mean() + (inner_xs - inner_xs.mean()) * 0.8
    bottom = np.stack([inner_xs, np.polyval(arc, inner_xs) + height], axis=1)
    return _polygon_mask(np.vstack([upper, bottom[::-1]]), size)
