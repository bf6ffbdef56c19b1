"""`talkface prepare`: raw clips → an aligned, landmarked, featurised dataset that streams to many ranks."""

from talkface.prepare.runner import PrepareSettings, prepare_dataset

__all__ = ["PrepareSettings", "prepare_dataset"]
