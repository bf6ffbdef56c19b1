"""The one DataModule both stages share."""

from datamodules.lrw_datamodule import LRWDataModule
from datamodules.sample_transform import ALL_FIELDS, FRAME_FIELDS, SampleTransform

__all__ = ["ALL_FIELDS", "FRAME_FIELDS", "LRWDataModule", "SampleTransform"]
