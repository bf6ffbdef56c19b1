"""The LightningModules: stage 1 (audio → landmarks), stage 2 (landmarks → frames) and the lip-sync expert."""

from lightning_modules.facegen_module import FaceGenModule
from lightning_modules.landmark_module import LandmarkModule
from lightning_modules.sync_expert import SyncExpertModule

__all__ = ["FaceGenModule", "LandmarkModule", "SyncExpertModule"]
