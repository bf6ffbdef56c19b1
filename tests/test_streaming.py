"""Chunked generation equals one-pass computation: audio decoding, feature windows, landmarks, paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.audio.features import FeatureConfig, audio_windows
from talkface.audio.streaming import WindowStream
from talkface.faces import estimate_alignment, load_template, paste_back
from talkface.faces.paste import FacePaster
from talkface.media import read_audio
from talkface.media.audio_stream import probe_audio, stream_audio
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_stream import LandmarkStream
from tests.helpers.media_factory import tone, write_audio_file


@pytest.mark.parametrize("kind", ["mel", "mfcc"])
@pytest.mark.parametrize("samples,chunk", [(18560, 3000), (48123, 16000), (500, 100), (64000, 640)])
def test_streamed_windows_equal_one_pass_windows(kind, samples, chunk):
    config = FeatureConfig(kind=kind)
    audio = np.random.default_rng(samples).standard_normal(samples).astype(np.float32) * 0.1
    frames = -(-samples // 640)
    stream = WindowStream(frames, config)
    parts = [stream.push(audio[i : i + chunk]) for i in range(0, samples, chunk)] + [stream.finish()]
    streamed = torch.cat(parts)
    assert stream.done
    assert torch.equal(streamed, audio_windows(audio, frames, config))


@pytest.mark.parametrize("temporal", ["lstm", "conv"])
def test_streamed_landmarks_equal_one_pass_landmarks(temporal):
    torch.manual_seed(0)
    model = AudioToLandmarks(80, 32, 32, 3, temporal).eval()
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)  # not the all-zero start
    windows, identity = torch.randn(1, 203, 28, 80), torch.rand(1, 68, 2)
    with torch.no_grad():
        whole = model(windows, identity)["landmarks"][0]
    stream = LandmarkStream(model, identity[0])
    parts = [stream.push(windows[0, i : i + 37]) for i in range(0, 203, 37)] + [stream.finish()]
    streamed = torch.cat(parts)
    assert streamed.shape == whole.shape
    assert torch.allclose(streamed, whole, atol=1e-5)


def test_without_identity_input_the_motion_is_the_same_for_every_face_and_streams_exactly():
    torch.manual_seed(0)
    model = AudioToLandmarks(80, 32, 32, 2, "lstm", identity_input=False).eval()
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)
    windows, faces = torch.randn(1, 60, 28, 80), torch.rand(2, 68, 2)
    with torch.no_grad():
        motion = [model(windows, face[None])["landmarks"][0] - face for face in faces]
    assert motion[0].abs().amax() > 1e-3
    assert torch.allclose(motion[0], motion[1], atol=1e-6)
    stream = LandmarkStream(model, faces[0])
    streamed = torch.cat([stream.push(windows[0, i : i + 17]) for i in range(0, 60, 17)] + [stream.finish()])
    assert torch.allclose(streamed, motion[0] + faces[0], atol=1e-5)


def test_transformer_streams_every_frame_once():
    model = AudioToLandmarks(80, 32, 32, 2, "transformer").eval()
    stream = LandmarkStream(model, torch.rand(68, 2))
    windows = torch.randn(100, 28, 80)
    parts = [stream.push(windows[i : i + 30]) for i in range(0, 100, 30)] + [stream.finish()]
    assert sum(len(p) for p in parts) == 100


@pytest.mark.parametrize(
    "rate,channels,suffix", [(16000, 1, ".wav"), (44100, 2, ".wav"), (22050, 1, ".mp3"), (48000, 2, ".flac")]
)
def test_streamed_audio_matches_whole_file_decoding(tmp_path, rate, channels, suffix):
    path = write_audio_file(tmp_path / f"speech{suffix}", tone(3.3, rate, 300.0), rate, channels)
    whole = read_audio(path)
    streamed = np.concatenate(list(stream_audio(path, chunk_samples=5000)))
    assert abs(len(streamed) - len(whole)) <= 2
    count = min(len(whole), len(streamed))
    assert np.abs(streamed[:count] - whole[:count]).max() < 0.02  # two resampler implementations
    summary = probe_audio(path)
    assert summary.samples == len(streamed)
    assert 0.45 < summary.peak < 0.55  # the tone's amplitude: channels are averaged, not summed


def test_face_paster_equals_paste_back():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    landmarks = load_template(128) * 1.3 + [150.0, 60.0]
    matrix = estimate_alignment(landmarks, 128)
    crop = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    fast = FacePaster(photo, matrix, 128, feather=0.1).paste(crop)
    slow = paste_back(photo, crop, matrix, feather=0.1)
    assert fast.shape == photo.shape
    assert np.abs(fast.astype(int) - slow.astype(int)).max() <= 1
    assert (fast != photo).any()
