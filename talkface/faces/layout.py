"""The 68-point landmark layout (iBUG 300-W, as dlib and FAN return it): the one place its
index ranges are written.

Every part is a `range` of point indices (0-based; "right" is the person's right, which is
image left). A range indexes numpy and torch arrays as a list (a copy); `span(part)` gives the
equivalent slice, a view, for the contiguous parts.
"""

from __future__ import annotations

NUM_POINTS = 68

JAW = range(0, 17)  # right ear → chin → left ear
CHIN = 8  # the jaw's lowest point
RIGHT_BROW = range(17, 22)
LEFT_BROW = range(22, 27)
BROWS = range(17, 27)
NOSE_BRIDGE = range(27, 31)  # top of the nose → tip
NOSE_TIP = 30
NOSTRILS = range(31, 36)
NOSE = range(27, 36)
RIGHT_EYE = range(36, 42)
LEFT_EYE = range(42, 48)
EYES = range(36, 48)
OUTER_LIPS = range(48, 60)  # from the right corner (48) over the upper lip, left corner 54, back along the lower
INNER_LIPS = range(60, 68)  # from the right corner (60) over the upper lip, left corner 64, back along the lower
MOUTH = range(48, 68)  # outer + inner lips: the points mouth LMD is measured on
FACE = range(0, NUM_POINTS)

# Points that do not move when a person speaks (nose and eyes): what alignment is fitted on.
STABLE = range(27, 48)

MOUTH_CORNERS = (OUTER_LIPS[0], OUTER_LIPS[6])  # 48 (right), 54 (left)
INNER_MOUTH_CORNERS = (INNER_LIPS[0], INNER_LIPS[4])  # 60 (right), 64 (left)


def span(part: range) -> slice:
    """The slice of a contiguous part: `landmarks[..., span(MOUTH), :]` is a view, not a copy."""
    if part.step != 1:
        raise ValueError(f"{part} is not contiguous")
    return slice(part.start, part.stop)
