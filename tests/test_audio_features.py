"""Audio features: one window per video frame, exactly aligned."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.audio import FeatureConfig, audio_windows
from talkface.errors import TalkfaceError


@pytest.mark.parametrize("kind", ["mel", "mfcc"])
@pytest.mark.parametrize("frames", [1, 29, 75])
def test_t_frames_get_t_windows_of_configured_shape(kind, frames):
    config = FeatureConfig(kind=kind)
    windows = audio_windows(np.random.default_rng(0).normal(0, 0.1, frames * 640), frames, config)
    assert windows.shape == (frames, config.window, config.dim)
    assert windows.shape[1] == 28 and windows.shape[2] == (80 if kind == "mel" else 12)
    assert torch.isfinite(windows).all()


@pytest.mark.parametrize("kind", ["mel", "mfcc"])
@pytest.mark.parametrize("click_frame", [0, 5, 14, 28])
def test_a_click_at_frame_k_peaks_in_window_k(kind, click_frame):
    config = FeatureConfig(kind=kind)
    audio = np.zeros(29 * 640, np.float32)
    audio[click_frame * 640 + 320] = 1.0
    windows = audio_windows(audio, 29, config)
    silence = audio_windows(np.zeros_like(audio), 29, config)
    centre = slice(config.context // 2 * config.steps_per_frame, (config.context // 2 + 1) * config.steps_per_frame)
    change = (windows[:, centre] - silence[:, centre]).abs().sum(dim=(1, 2))
    assert int(change.argmax()) == click_frame
    # The click sits at the same place in every window that contains it: one frame later, one step earlier.
    if 0 < click_frame:
        lag = (windows[click_frame - 1] - silence[click_frame - 1]).abs().sum(1).argmax()
        here = (windows[click_frame] - silence[click_frame]).abs().sum(1).argmax()
        assert int(lag) - int(here) == config.steps_per_frame


def test_audio_is_cut_or_padded_to_the_frame_count():
    config = FeatureConfig()
    short = audio_windows(np.ones(1000, np.float32) * 0.1, 10, config)
    long = audio_windows(np.ones(100_000, np.float32) * 0.1, 10, config)
    assert short.shape == long.shape == (10, 28, 80)


def test_context_and_hop_are_configurable_and_checked():
    config = FeatureConfig(kind="mel", n_mels=40, hop_length=320, context=5)
    assert audio_windows(np.zeros(640 * 8, np.float32), 8, config).shape == (8, 10, 40)
    with pytest.raises(TalkfaceError, match="odd"):
        FeatureConfig(context=4)
    with pytest.raises(TalkfaceError, match="hop_length"):
        FeatureConfig(hop_length=300)
