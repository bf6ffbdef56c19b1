"""`talkface prepare`: raw clips → an aligned, landmarked, featurised dataset that streams to many ranks.

`PrepareSettings` (and its checks) import no torch; `prepare_dataset` is imported on first use.
"""

from talkface.prepare.settings import PrepareSettings

__all__ = ["PrepareSettings", "prepare_dataset"]


def __getattr__(name: str):
    if name == "prepare_dataset":
        from talkface.prepare.runner import prepare_dataset

        return prepare_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
