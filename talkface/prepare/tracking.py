"""68 landmarks for every frame of a clip: detect once, track, re-detect when the fit drifts.

Detection (HOG) costs 10-20x a landmark fit, so the detector box of the last detection is carried
along by the motion of the landmarks (a similarity transform between the landmarks at detection
time and the latest ones) instead of re-detecting every frame. A fit whose size or position
jumps, or a box leaving the frame, triggers a fresh detection; a frame where detection then
finds nothing is "lost" and keeps the previous landmarks.

Real clips are not all frontal from frame 0: some GRID clips fade in from grey, LRS2-style crops
show tilted heads, wide shots small faces. So the first face is searched in frames spread over
the whole clip, with the backend's slower fallback detector (dlib: CNN) when the fast one finds
none, and tracking runs backwards from it as well as forwards. A clip whose face is found at
frame 0 by the fast detector (most clips) costs what it did before.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from talkface.errors import NoFaceError
from talkface.faces import LandmarkExtractor, similarity_transform, transform_points
from talkface.faces.landmarks import largest_box
from talkface.faces.layout import STABLE

# Stable points (eyes, nose) drive the box; the mouth and jaw move on their own.
_STABLE = np.asarray(STABLE)

# A fit whose eye line turned by more than this (degrees) in one frame has slipped: re-detect.
MAX_TURN = 15.0

# Heads rolled further than this (degrees) are fitted in a frame rotated upright.
UPRIGHT_ROLL = 12.0


@dataclass
class TrackResult:
    landmarks: np.ndarray  # (T, 68, 2) float32 image pixels
    detections: int  # how many times the detector ran
    lost: int  # frames where the face could not be found (previous landmarks kept)
    fallback_detections: int = 0  # how many times the slow fallback detector ran
    found: np.ndarray | None = None  # (T,) bool: the face was fitted there (False: lost, points held)


def search_frames(num_frames: int, first: int, spread: int) -> list[int]:
    """Where to look for the face: the first `first` frames, then `spread` more spread evenly over
    the clip (a face that fades in from grey, or turns to the camera later, is still found)."""
    head = list(range(min(first, num_frames)))
    rest = np.linspace(len(head), num_frames - 1, spread).round().astype(int) if num_frames > len(head) else []
    return head + [int(t) for t in dict.fromkeys(rest) if t not in head]


def track_landmarks(
    frames: np.ndarray,
    extractor: LandmarkExtractor,
    name: str,
    max_jump: float = 0.25,
    first_search: int = 5,
    spread_search: int = 10,
    fallback_search: int = 4,
    fallback_budget: float = 0.05,
) -> TrackResult:
    """Landmarks for every frame; NoFaceError when the face is found nowhere.

    The face is looked for with the fast detector in the first `first_search` frames and in
    `spread_search` more spread over the clip; where none has one, the backend's slow fallback
    detector (dlib: CNN) tries `fallback_search` of them. From the first frame with a face the
    face is tracked forwards to the end and backwards to the start. While tracking, a lost face
    is re-detected with the fast detector, and with the fallback in at most `fallback_budget` of
    the frames (plus two), so that a clip whose face has gone does not cost a CNN run per frame.
    """
    candidates = search_frames(len(frames), first_search, spread_search)
    budget = Budget(2 + int(fallback_budget * len(frames)))
    start, box, detections = _first_detection(frames, extractor, candidates, fallback_search, budget)
    if box is None:
        raise NoFaceError(
            f"no face found in {name}: searched {len(candidates)} of its {len(frames)} frames (the first "
            f"{min(first_search, len(frames))} and {len(candidates) - min(first_search, len(frames))} spread "
            f"over the clip), {budget.used} of them with the slower fallback detector too"
        )
    landmarks = np.zeros((len(frames), 68, 2), np.float32)
    found = np.ones(len(frames), bool)
    landmarks[start] = fit_upright(extractor, frames[start], box)
    forward = _follow(
        frames, extractor, range(start + 1, len(frames)), box, (landmarks, found), start, max_jump, budget
    )
    backward = _follow(frames, extractor, range(start - 1, -1, -1), box, (landmarks, found), start, max_jump, budget)
    return TrackResult(
        landmarks,
        detections + forward[0] + backward[0],
        forward[1] + backward[1],
        budget.used,
        found,
    )


@dataclass
class Budget:
    """How many more times the slow fallback detector may run on this clip."""

    left: int
    used: int = 0

    def detect(self, extractor: LandmarkExtractor, frame: np.ndarray) -> list:
        if self.left <= 0:
            return []
        self.left -= 1
        self.used += 1
        return extractor.detect_fallback(frame)


def _follow(frames, extractor, order, box, outputs, start, max_jump, budget) -> tuple[int, int]:
    """Track from frame `start` (fitted) through `order`, filling `outputs` (landmarks, found);
    returns (detections, lost frames)."""
    landmarks, found = outputs
    detections = lost = 0
    anchor_box, anchor = box, _Fit(landmarks[start])
    previous = anchor
    for t in order:
        predicted_box = _carry_box(anchor_box, anchor.stable, previous.stable)
        inside = _inside(predicted_box, frames[t])
        fit = _Fit(fit_upright(extractor, frames[t], predicted_box, previous.roll)) if inside else None
        # Against the previous frame (a jump) and against the last detection (a slow drift: fits
        # that shrink a little each frame, as on turned or tilted heads, pass the first test).
        if fit is None or _fit_jumped(previous, fit, max_jump) or _fit_shrunk(anchor, fit, max_jump):
            detections += 1
            boxes = extractor.detect(frames[t]) or budget.detect(extractor, frames[t])
            if boxes:
                anchor_box = largest_box(boxes)
                anchor = fit = _Fit(fit_upright(extractor, frames[t], anchor_box))
            else:
                lost += 1
                found[t] = False
                fit = previous
        landmarks[t] = fit.points
        previous = fit
    return detections, lost


class _Fit:
    """One frame's 68 points with what the tracking tests read from them, computed once
    (per frame they are read up to three times: as this frame, as the previous one, as the anchor)."""

    def __init__(self, points: np.ndarray) -> None:
        self.points = points
        self.stable = points[_STABLE]
        self.size = np.ptp(self.stable, axis=0).max()
        self.centre = self.stable.mean(0)
        self.roll = roll(points)


def roll(points: np.ndarray) -> float:
    """The head's in-plane rotation in degrees: the angle of the line from eye to eye."""
    dx, dy = points[42:48].mean(0) - points[36:42].mean(0)
    return float(np.degrees(np.arctan2(dy, dx)))


def fit_upright(extractor: LandmarkExtractor, frame: np.ndarray, box, angle: float | None = None) -> np.ndarray:
    """The 68 points of the face in `box`, fitted with the head turned upright.

    dlib's predictor (like most) was trained on near-upright faces: on a head tilted by 30-45 deg
    its fit drifts and shrinks frame by frame. When the head's roll (`angle`, from the previous
    frame's points, or from a first plain fit) exceeds UPRIGHT_ROLL, the frame is rotated about
    the box's centre so the eyes are level, fitted there, and the points are rotated back.
    Upright heads (most frames) cost one plain fit, as before.
    """
    if angle is None:
        points = extractor.fit(frame, box)
        angle = roll(points)
        if abs(angle) < UPRIGHT_ROLL:
            return points
    elif abs(angle) < UPRIGHT_ROLL:
        return extractor.fit(frame, box)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    for _ in range(2):  # the second pass corrects an angle estimated from a tilted fit
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)  # levels the eyes
        height, width = frame.shape[:2]
        level = cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        upright = extractor.fit(level, box)
        points = transform_points(upright.astype(np.float64), cv2.invertAffineTransform(matrix)).astype(np.float32)
        residual = roll(upright)
        if abs(residual) < UPRIGHT_ROLL / 2:
            break
        angle = roll(points)
    return points


def _first_detection(frames, extractor, candidates, fallback_search, budget):
    """(frame, box, detector runs) of the first face found; (None, None, runs) when none."""
    for calls, t in enumerate(candidates, start=1):
        boxes = extractor.detect(frames[t])
        if boxes:
            return t, largest_box(boxes), calls
    # The slow detector on a few of the candidates, spread over them (first frame included).
    picks = np.linspace(0, len(candidates) - 1, min(fallback_search, len(candidates))).round().astype(int)
    for index in dict.fromkeys(picks.tolist()):
        boxes = budget.detect(extractor, frames[candidates[index]])
        if boxes:
            return candidates[index], largest_box(boxes), len(candidates) + budget.used
    return None, None, len(candidates) + budget.used


def _carry_box(box, anchor_stable: np.ndarray, stable: np.ndarray):
    """Move the detector box with the face: the similarity from the anchor's stable points to the
    current ones."""
    matrix = similarity_transform(anchor_stable, stable)
    left, top, right, bottom = box
    corners = transform_points(np.array([[left, top], [right, bottom]], np.float64), matrix)
    centre = corners.mean(axis=0)
    half = np.sqrt(np.abs(np.linalg.det(matrix[:, :2]))) * np.array([right - left, bottom - top]) / 2
    return (centre[0] - half[0], centre[1] - half[1], centre[0] + half[0], centre[1] + half[1])


def _inside(box, frame) -> bool:
    height, width = frame.shape[:2]
    left, top, right, bottom = box
    size = max(right - left, bottom - top)
    return left > -0.5 * size and top > -0.5 * size and right < width + 0.5 * size and bottom < height + 0.5 * size


def _shrunk(anchor: np.ndarray, points: np.ndarray, max_jump: float) -> bool:
    """A fit whose size drifted by more than `max_jump` from the last detection's (the face may
    move freely: the box follows it; only its size is checked)."""
    return _fit_shrunk(_Fit(anchor), _Fit(points), max_jump)


def _fit_shrunk(anchor: _Fit, fit: _Fit, max_jump: float) -> bool:
    ratio = fit.size / max(anchor.size, 1e-6)
    return not (1 - max_jump) < ratio < 1 / (1 - max_jump)


def _jumped(previous: np.ndarray, points: np.ndarray, max_jump: float) -> bool:
    """A fit whose face size or position changed by more than `max_jump` of its size in one frame,
    or whose eye line turned by more than MAX_TURN degrees (a fit slipping off a tilted head)."""
    return _fit_jumped(_Fit(previous), _Fit(points), max_jump)


def _fit_jumped(previous: _Fit, fit: _Fit, max_jump: float) -> bool:
    if not (1 - max_jump) < fit.size / max(previous.size, 1e-6) < 1 / (1 - max_jump):
        return True
    shift = np.linalg.norm(fit.centre - previous.centre)
    turn = abs((fit.roll - previous.roll + 180) % 360 - 180)
    return shift > max_jump * previous.size or turn > MAX_TURN
