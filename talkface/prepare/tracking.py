"""68 landmarks for every frame of a clip: detect once, track, re-detect when the fit drifts.

Detection (HOG) costs 10-20x a landmark fit, so the detector box of the last detection is carried
along by the motion of the landmarks (a similarity transform between the landmarks at detection
time and the latest ones) instead of re-detecting every frame. A fit whose size or position
jumps, or a box leaving the frame, triggers a fresh detection; a frame where detection then
finds nothing is "lost" and keeps the previous landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkface.errors import NoFaceError
from talkface.faces import LandmarkExtractor, similarity_transform, transform_points
from talkface.faces.landmarks import largest_box
from talkface.faces.layout import STABLE

# Stable points (eyes, nose) drive the box; the mouth and jaw move on their own.
_STABLE = np.asarray(STABLE)


@dataclass
class TrackResult:
    landmarks: np.ndarray  # (T, 68, 2) float32 image pixels
    detections: int  # how many times the detector ran
    lost: int  # frames where the face could not be found (previous landmarks kept)


def track_landmarks(
    frames: np.ndarray,
    extractor: LandmarkExtractor,
    name: str,
    max_jump: float = 0.25,
    first_search: int = 5,
) -> TrackResult:
    """Landmarks for every frame; NoFaceError when none of the first `first_search` frames has a face."""
    start, box = _first_detection(frames, extractor, min(first_search, len(frames)))
    if box is None:
        raise NoFaceError(f"no face found in the first {min(first_search, len(frames))} frames of {name}")
    detections = start + 1
    landmarks = np.zeros((len(frames), 68, 2), np.float32)
    anchor_box, anchor_points = box, extractor.fit(frames[start], box)
    landmarks[start] = anchor_points
    lost = start
    previous = anchor_points
    for t in range(start + 1, len(frames)):
        predicted_box = _carry_box(anchor_box, anchor_points, previous)
        points = extractor.fit(frames[t], predicted_box) if _inside(predicted_box, frames[t]) else None
        if points is None or _jumped(previous, points, max_jump):
            detections += 1
            boxes = extractor.detect(frames[t])
            if boxes:
                anchor_box = largest_box(boxes)
                anchor_points = points = extractor.fit(frames[t], anchor_box)
            else:
                lost += 1
                points = previous
        landmarks[t] = points
        previous = points
    landmarks[:start] = landmarks[start]
    return TrackResult(landmarks, detections, lost)


def _first_detection(frames, extractor, search):
    for t in range(search):
        boxes = extractor.detect(frames[t])
        if boxes:
            return t, largest_box(boxes)
    return search, None


def _carry_box(box, anchor_points: np.ndarray, points: np.ndarray):
    """Move the detector box with the face: the similarity from anchor to current stable points."""
    matrix = similarity_transform(anchor_points[_STABLE], points[_STABLE])
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


def _jumped(previous: np.ndarray, points: np.ndarray, max_jump: float) -> bool:
    """A fit whose face size or position changed by more than `max_jump` of its size in one frame."""
    size_before = np.ptp(previous[_STABLE], axis=0).max()
    size_now = np.ptp(points[_STABLE], axis=0).max()
    if not (1 - max_jump) < size_now / max(size_before, 1e-6) < 1 / (1 - max_jump):
        return True
    shift = np.linalg.norm(points[_STABLE].mean(0) - previous[_STABLE].mean(0))
    return shift > max_jump * size_before
