"""Every class the Lightning CLI exposes documents every argument: its docstring is the `--help`."""

from __future__ import annotations

import pytest
from jsonargparse import ArgumentParser

from callbacks import VideoSamples
from datamodules import LRWDataModule
from lightning_modules import FaceGenModule, LandmarkModule, SyncExpertModule
from losses import LOSS_REGISTRY, registered_names

registered_names()  # registers the built-in terms
EXPOSED = [LandmarkModule, FaceGenModule, SyncExpertModule, LRWDataModule, VideoSamples, *LOSS_REGISTRY.values()]


@pytest.mark.parametrize("cls", EXPOSED, ids=lambda cls: cls.__name__)
def test_every_argument_has_a_help_text(cls):
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "x")
    arguments = [action for action in parser._actions if action.dest.startswith("x.")]
    assert arguments
    undocumented = [action.dest[2:] for action in arguments if not (action.help or "").strip()]
    assert not undocumented, f"{cls.__name__}: no help text for {undocumented}"
