"""Media I/O: decoding real and generated files, writing H.264 + AAC mp4, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkface import FPS, SAMPLE_RATE
from talkface.errors import MediaError
from talkface.media import Mp4Writer, read_audio, read_image, read_video, write_mp4
from tests.helpers.media_factory import numbered_frames, tone, write_audio_file
from tests.helpers.real_data import real_files

FRAME = 1.0 / FPS

# Durations measured independently (PROVENANCE.md of the real set).
REAL_AUDIO_SECONDS = {
    "atvgnet_audio_sample.wav": 6.00,
    "hdtf_rd_radio31.wav": 8.00,
    "hdtf_rd_radio34.wav": 8.00,
    "hdtf_rd_radio36.wav": 8.00,
    "librispeech_1320.mp3": 5.00,
    "librispeech_3575.mp3": 5.00,
    "librispeech_6829.mp3": 5.01,
    "lrs2_00008.wav": 3.07,
    "makeittalk_m6_04_16k.wav": 4.88,
    "vctk_p240.mp3": 4.94,
}


@pytest.mark.slow
@pytest.mark.parametrize("path", real_files("videos"), ids=lambda p: p.name)
def test_real_video_decodes_to_25fps_and_16k_mono_of_matching_length(path: Path):
    clip = read_video(path)
    assert clip.fps == FPS and clip.frames.ndim == 4 and clip.frames.shape[-1] == 3
    assert clip.frames.dtype == np.uint8 and len(clip.frames) > 25
    assert clip.audio is not None and clip.audio.ndim == 1 and clip.audio.dtype == np.float32
    assert abs(len(clip.audio) / SAMPLE_RATE - clip.duration) <= FRAME
    assert 0.01 < np.abs(clip.audio).max() <= 1.1  # resampling may overshoot a full-scale peak slightly


@pytest.mark.slow
@pytest.mark.parametrize("path", real_files("audio"), ids=lambda p: p.name)
def test_real_audio_decodes_to_16k_mono_of_the_right_length(path: Path):
    audio = read_audio(path)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert abs(len(audio) / SAMPLE_RATE - REAL_AUDIO_SECONDS[path.name]) <= FRAME
    assert np.abs(audio).max() > 0.05


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_audio_files_of_any_rate_and_layout_become_16k_mono(tmp_path, suffix, rate, channels):
    seconds = 1.3
    path = write_audio_file(tmp_path / f"tone{suffix}", tone(seconds, rate, 440.0, 0.5), rate, channels)
    audio = read_audio(path)
    # mp3 adds encoder delay (~1 frame of 1152 samples); everything else is exact.
    tolerance = FRAME if suffix == ".mp3" else 1 / rate + 1 / SAMPLE_RATE
    assert abs(len(audio) / SAMPLE_RATE - seconds) <= tolerance
    middle = audio[len(audio) // 4 : 3 * len(audio) // 4]
    # Downmixing averages identical channels, so the tone keeps its amplitude (not 2x, not 0.7x).
    lossy = 0.1 if suffix == ".mp3" else 0.03  # 8 kHz mp3 is coded at a low bit rate
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=lossy)
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(len(middle), 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(440, abs=5)


def test_written_mp4_round_trips_frames_and_true_audio_length(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.clip(
        np.linspace(0, 255, 128)[None, None, :, None] + rng.normal(0, 3, (29, 128, 128, 3)), 0, 255
    ).astype(np.uint8)
    audio = tone(1.16, SAMPLE_RATE, 300.0, 0.3)[: 18560 + 123]  # not a multiple of AAC's 1024
    audio = np.concatenate([audio, np.zeros(18560 + 123 - len(audio), np.float32)])
    path = write_mp4(tmp_path / "clip.mp4", frames, audio)

    clip = read_video(path)
    assert clip.frames.shape == frames.shape and clip.fps == FPS
    assert np.abs(clip.frames.astype(float) - frames).mean() < 3.0
    assert len(clip.audio) == len(audio)  # the AAC tail is trimmed to the true length
    assert len(read_audio(path)) == len(audio)
    assert np.corrcoef(clip.audio[2000:-2000], audio[2000:-2000])[0, 1] > 0.95


def test_frame_rate_is_resampled_to_25fps_by_nearest_earlier_frame(tmp_path):
    frames = numbered_frames(60)  # 2 s at 30 fps
    with Mp4Writer(tmp_path / "thirty.mp4", 64, 64, fps=30, sample_rate=None) as writer:
        writer.write_frames(frames)
    clip = read_video(tmp_path / "thirty.mp4")
    assert clip.source_fps == pytest.approx(30) and clip.audio is None
    assert len(clip.frames) == 50
    decoded_index = np.round(clip.frames[:, 32, 32, 0].astype(float) / 4).astype(int)
    expected_index = np.floor(np.arange(50) * 30 / 25 + 1e-6).astype(int)
    assert np.abs(decoded_index - expected_index).max() <= 1
    assert (np.diff(decoded_index) >= 0).all()


def test_writer_failure_leaves_no_file(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with Mp4Writer(target, 64, 64) as writer:
            writer.write_frame(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("crash while generating")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_odd_sizes():
    with pytest.raises(MediaError, match="even"):
        Mp4Writer("/tmp/never.mp4", 63, 64)


def test_image_with_alpha_is_composited_on_white(tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :] = (255, 0, 0, 255)  # opaque red top, transparent bottom
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (8, 8, 3)
    assert tuple(image[0, 0]) == (255, 0, 0) and tuple(image[-1, -1]) == (255, 255, 255)


@pytest.fixture
def bad_media(tmp_path) -> dict[str, Path]:
    good = write_mp4(tmp_path / "good.mp4", numbered_frames(50), tone(2.0, SAMPLE_RATE))
    data = good.read_bytes()
    files = {
        "truncated": tmp_path / "truncated.mp4",
        "empty": tmp_path / "empty.mp4",
        "text": tmp_path / "notes.mp4",
        "missing": tmp_path / "missing.mp4",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("this is a text file, not a video\n")
    return files


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "missing"])
def test_bad_media_raises_a_media_error_naming_the_file(bad_media, kind):
    with pytest.raises(MediaError) as error:
        read_video(bad_media[kind])
    assert bad_media[kind].name in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(MediaError):
        read_audio(bad_media[kind])
