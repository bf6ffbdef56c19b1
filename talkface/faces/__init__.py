"""Faces: 68-point landmarks (dlib or FAN), alignment to a canonical template, rendering.

Backends are built through `get_extractor(name)` so that importing this package never loads
torch or face_alignment (the FAN backend is imported only when asked for).
"""

from talkface.faces.alignment import (
    STABLE_POINTS,
    align_face,
    check_crop_size,
    estimate_alignment,
    feather_mask,
    invert,
    paste_back,
    similarity_transform,
    smooth_transforms,
    transform_points,
    warp_to_crop,
)
from talkface.faces.landmarks import (
    BACKENDS,
    FaceBox,
    LandmarkExtractor,
    SeveralFacesWarning,
    clear_extractor_cache,
    get_extractor,
)
from talkface.faces.rendering import (
    CONTOURS,
    PARTS,
    heatmap_channels,
    render_contours,
    render_heatmaps,
    render_heatmaps_torch,
)
from talkface.faces.template import load_template

__all__ = [
    "BACKENDS",
    "CONTOURS",
    "PARTS",
    "STABLE_POINTS",
    "FaceBox",
    "LandmarkExtractor",
    "SeveralFacesWarning",
    "align_face",
    "check_crop_size",
    "clear_extractor_cache",
    "estimate_alignment",
    "feather_mask",
    "get_extractor",
    "heatmap_channels",
    "invert",
    "load_template",
    "paste_back",
    "render_contours",
    "render_heatmaps",
    "render_heatmaps_torch",
    "similarity_transform",
    "smooth_transforms",
    "transform_points",
    "warp_to_crop",
]
