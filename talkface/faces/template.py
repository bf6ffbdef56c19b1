"""The canonical 68-point face template every frame is aligned to, and how it is made.

The template is our own: dlib landmarks of real photos (the 10 in data/real/faces plus
skimage's astronaut), Procrustes-aligned to their iterative mean, made upright (eye line
horizontal) and exactly mirror-symmetric, then placed in a unit square so that the whole face,
jaw included, and some forehead fit in the crop, with the mouth at 70% of the height. Rebuild it with

    python -m talkface.faces.template --rebuild [--faces DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from talkface.faces.layout import CHIN, EYES, JAW, LEFT_BROW, LEFT_EYE, MOUTH, NUM_POINTS, RIGHT_BROW, RIGHT_EYE, span

TEMPLATE_FILE = Path(__file__).with_name("template_68.json")
DEFAULT_FACES = (
    Path(os.environ.get("TALKFACE_REAL_DATA", Path(__file__).resolve().parents[3] / "shared" / "data" / "real"))
    / "faces"
)

# Placement in the unit square (x right, y down): the face's symmetry axis at x = 0.5, the mean
# mouth centre (points 48-67) at MOUTH_Y and the chin (point 8) at CHIN_Y. That fixes the scale;
# it leaves ~0.08 below the chin for an opening jaw and ~0.28 above the brows for the forehead.
MOUTH_Y = 0.70
CHIN_Y = 0.92

# Left/right pairs of the standard 68-point (iBUG 300-W) scheme; unlisted points are on the axis.
MIRROR_PAIRS = (
    [(JAW[i], JAW[-1 - i]) for i in range(len(JAW) // 2)]  # jaw: (0, 16), (1, 15), ... (7, 9)
    + list(zip(RIGHT_BROW, reversed(LEFT_BROW), strict=True))  # brows: (17, 26), ... (21, 22)
    + [(31, 35), (32, 34)]  # nostrils
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    + [(60, 64), (61, 63), (65, 67)]  # inner lips
)


def mirror_permutation() -> np.ndarray:
    """Index map taking each point to its mirror partner (itself on the axis)."""
    perm = np.arange(NUM_POINTS)
    for a, b in MIRROR_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def _normalise(shape: np.ndarray) -> np.ndarray:
    """Centred on its centroid, unit Frobenius norm: removes translation and scale."""
    shape = shape - shape.mean(axis=0)
    return shape / np.linalg.norm(shape)


def _rotate_onto(shape: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`shape` (centred) rotated, without reflection, to best match `target` (orthogonal Procrustes)."""
    u, _, vt = np.linalg.svd(shape.T @ target)
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, d]) @ vt
    return shape @ rotation


def procrustes_mean(shapes: list[np.ndarray], iterations: int = 100, tol: float = 1e-12) -> np.ndarray:
    """Generalised Procrustes analysis: the mean shape, centred, unit norm, oriented like shapes[0]."""
    shapes = [_normalise(np.asarray(s, dtype=np.float64)) for s in shapes]
    mean = shapes[0]
    for _ in range(iterations):
        aligned = [_normalise(_rotate_onto(s, mean)) for s in shapes]
        new_mean = _normalise(_rotate_onto(_normalise(np.mean(aligned, axis=0)), shapes[0]))
        if np.sum((new_mean - mean) ** 2) < tol:
            return new_mean
        mean = new_mean
    return mean


def make_upright_symmetric(shape: np.ndarray) -> np.ndarray:
    """Rotate so the eye line is horizontal, then average with the mirror image (exact symmetry)."""
    right_eye, left_eye = shape[span(RIGHT_EYE)].mean(axis=0), shape[span(LEFT_EYE)].mean(axis=0)
    dx, dy = left_eye - right_eye
    angle = -np.arctan2(dy, dx)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shape = (shape - shape.mean(axis=0)) @ rotation.T
    mirrored = shape * np.array([-1.0, 1.0])
    return (shape + mirrored[mirror_permutation()]) / 2


def place_in_unit_square(shape: np.ndarray) -> np.ndarray:
    """Scale and shift an upright, symmetric shape (axis x = 0) into the unit square."""
    mouth_y = shape[span(MOUTH), 1].mean()
    scale = (CHIN_Y - MOUTH_Y) / (shape[CHIN, 1] - mouth_y)
    placed = shape * scale
    return placed + np.array([0.5, CHIN_Y - placed[CHIN, 1]])


def build_template(landmark_sets: list[np.ndarray]) -> np.ndarray:
    """The (68, 2) template in unit coordinates from landmark sets of different faces."""
    return place_in_unit_square(make_upright_symmetric(procrustes_mean(landmark_sets)))


def source_images(faces_dir: Path = DEFAULT_FACES) -> list[tuple[str, np.ndarray]]:
    """The photos the template is made from: every image in `faces_dir` plus the astronaut."""
    from skimage.data import astronaut

    from talkface.media.image_io import read_image

    images = [
        (p.name, read_image(p))
        for p in sorted(Path(faces_dir).iterdir())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    return images + [("skimage.data.astronaut()", astronaut())]


def rebuild(faces_dir: Path = DEFAULT_FACES, path: Path = TEMPLATE_FILE) -> dict:
    """Recompute the template from the real photos with dlib, and write it as JSON."""
    from talkface.faces.landmarks import get_extractor

    extractor = get_extractor("dlib")
    names, sets = [], []
    for name, image in source_images(faces_dir):
        names.append(name)
        sets.append(extractor.landmarks(image, name=name))
    points = build_template(sets)
    record = {
        "note": (
            "Canonical 68-point face template in unit-square coordinates (x right, y down). Made by "
            "talkface.faces.template.rebuild(): dlib 68-point landmarks of the listed photos, "
            "generalised Procrustes alignment to their iterative mean, rotated so the eye line is "
            "horizontal, averaged with its mirror image (exactly symmetric), scaled and shifted so the "
            f"mouth centre is at y={MOUTH_Y}, the chin (point 8) at y={CHIN_Y} and the axis at x=0.5."
        ),
        "sources": names,
    }
    # One point per line keeps the file readable and its diffs small.
    rows = ",\n".join(f"  [{x:.5f}, {y:.5f}]" for x, y in points)
    path.write_text(json.dumps(record, indent=1)[:-2] + f',\n "points": [\n{rows}\n ]\n}}\n')
    record["points"] = np.round(points, 5).tolist()
    _unit_template.cache_clear()
    return record


@lru_cache(maxsize=1)
def _unit_template() -> np.ndarray:
    points = np.array(json.loads(TEMPLATE_FILE.read_text())["points"], dtype=np.float64)
    if points.shape != (NUM_POINTS, 2):
        raise ValueError(f"{TEMPLATE_FILE} holds {points.shape} points, expected ({NUM_POINTS}, 2)")
    return points


def load_template(crop_size: int = 128) -> np.ndarray:
    """The template in pixels of a `crop_size` square crop, (68, 2) float32.

    Pixel centres are at integer coordinates, so unit 0..1 maps to -0.5..crop_size-0.5.
    """
    return (_unit_template() * crop_size - 0.5).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="recompute template_68.json from photos")
    parser.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="folder of face photos")
    args = parser.parse_args(argv)
    if not args.rebuild:
        parser.error("nothing to do: pass --rebuild")
    record = rebuild(args.faces)
    points = np.array(record["points"])
    print(f"wrote {TEMPLATE_FILE} from {len(record['sources'])} photos")
    eyes_y, mouth_y = points[span(EYES), 1].mean(), points[span(MOUTH), 1].mean()
    print(f"eyes y={eyes_y:.3f}, mouth y={mouth_y:.3f}, chin y={points[CHIN, 1]:.3f}")


if __name__ == "__main__":
    main()
