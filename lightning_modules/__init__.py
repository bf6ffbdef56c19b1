"""The two LightningModules: stage 1 (audio → landmarks) and stage 2 (landmarks → frames)."""

from lightning_modules.facegen_module import FaceGenModule
from lightning_modules.landmark_module import LandmarkModule

__all__ = ["FaceGenModule", "LandmarkModule"]
