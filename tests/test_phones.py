"""Phone windows (PocketSphinx): deterministic, speech where there is speech, streamed exactly, read by stage 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.audio.features import FeatureConfig, audio_windows
from talkface.audio.input_stream import StageOneInputs
from talkface.audio.phone_stream import PhoneStream
from talkface.audio.phones import BLOCK, CONTEXT, PHONES, decode_block, phone_rows, phone_windows
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_stream import LandmarkStream
from talkface.sample.speech import synthesize

SILENCE = PHONES.index("SIL")


@pytest.fixture(scope="module")
def sentence() -> tuple[np.ndarray, int, int]:
    """Half a second of silence, a spoken sentence, half a second of silence; the speech's frame span."""
    speech = synthesize("a quiet morning in the garden", seed=0)
    pad = np.zeros(8000, np.float32)
    start, end = round((0.5 + speech.word_start) * 25), round((0.5 + speech.word_end) * 25)
    return np.concatenate([pad, speech.audio, pad]), start, end


def test_a_block_decodes_the_same_whatever_was_decoded_before(sentence):
    audio = sentence[0]
    first = decode_block(audio[: BLOCK * 640])
    decode_block(audio[BLOCK * 640 :])  # would shift the front end's running mean without the reset
    again = decode_block(audio[: BLOCK * 640])
    assert np.array_equal(first, again)


def test_phone_rows_share_out_every_frame_and_find_the_speech(sentence):
    audio, start, end = sentence
    frames = -(-len(audio) // 640)
    rows = phone_rows(audio, frames)
    assert rows.shape == (frames, len(PHONES))
    assert np.allclose(rows.sum(1), 1.0)
    assert rows[:10, SILENCE].mean() > 0.9 and rows[-10:, SILENCE].mean() > 0.9
    assert rows[start + 1 : end - 1, SILENCE].mean() < 0.5  # most spoken frames get a phone


def test_phone_windows_centre_each_frame_and_repeat_the_edges():
    rows = np.eye(len(PHONES), dtype=np.float32)[:11]
    windows = phone_windows(rows)
    assert CONTEXT == 9 and windows.shape == (11, CONTEXT, len(PHONES))
    assert np.array_equal(windows[5], rows[1:10])
    assert np.array_equal(windows[0, :5], rows[[0, 0, 0, 0, 0]])
    assert np.array_equal(windows[-1, -5:], rows[[10, 10, 10, 10, 10]])


@pytest.mark.parametrize("chunk", [640 * 8, 3000, 48000])
@pytest.mark.parametrize("extra_frames", [0, 9])
def test_streamed_phone_windows_equal_one_pass(sentence, chunk, extra_frames):
    audio = sentence[0]
    frames = -(-len(audio) // 640) + extra_frames  # longer than the audio: padded with silence
    expected = phone_windows(phone_rows(audio, frames))
    stream = PhoneStream(frames)
    streamed = torch.cat([stream.push(audio[i : i + chunk]) for i in range(0, len(audio), chunk)] + [stream.finish()])
    assert torch.equal(streamed, torch.from_numpy(expected))


def test_stage_one_inputs_give_windows_and_phones_for_the_same_frames(sentence):
    audio = sentence[0]
    frames = -(-len(audio) // 640)
    config = FeatureConfig()
    inputs = StageOneInputs(frames, config, phones=True)
    parts = [inputs.push(audio[i : i + 2000]) for i in range(0, len(audio), 2000)] + [inputs.finish()]
    assert all(len(windows) == len(phones) for windows, phones in parts)
    assert torch.equal(torch.cat([w for w, _ in parts]), audio_windows(audio, frames, config))
    assert torch.equal(torch.cat([p for _, p in parts]), torch.from_numpy(phone_windows(phone_rows(audio, frames))))
    assert StageOneInputs(frames, config, phones=False).push(audio)[1] is None


def test_a_model_reading_phones_uses_them_streams_exactly_and_refuses_to_run_without_them():
    torch.manual_seed(0)
    model = AudioToLandmarks(80, 32, 32, 2, "lstm", phone_input=True).eval()
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)
    windows, identity = torch.randn(1, 70, 28, 80), torch.rand(1, 68, 2)
    phones = torch.eye(len(PHONES))[torch.randint(len(PHONES), (1, 70, CONTEXT))]  # one phone a frame
    with torch.no_grad():
        whole = model(windows, identity, phones)["landmarks"][0]
        other = model(windows, identity, phones.roll(5, dims=1))["landmarks"][0]
    assert (whole - other).abs().amax() > 1e-4  # other phones, other motion (untrained: small numbers)
    stream = LandmarkStream(model, identity[0])
    parts = [stream.push(windows[0, i : i + 23], phones[0, i : i + 23]) for i in range(0, 70, 23)]
    assert torch.allclose(torch.cat(parts + [stream.finish()]), whole, atol=1e-5)
    with pytest.raises(ValueError, match="phone windows"):
        model(windows, identity)


@pytest.mark.parametrize(("context", "offset", "read"), [(5, 0, (2, 7)), (5, 2, (4, 9)), (CONTEXT, 0, (0, 9))])
def test_a_model_reads_only_its_rows_of_each_phone_window(context, offset, read):
    """Data and streams give CONTEXT rows a frame (t - 4 .. t + 4); a model reads `context` of them
    moved `offset` later (the first release: 5 centred, rows 2-6), so its output moves when one of
    those rows changes and not when another does."""
    torch.manual_seed(0)
    model = AudioToLandmarks(80, 32, 32, 2, "lstm", phone_input=True, phone_context=context, phone_offset=offset)
    model.eval()
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)
    assert model.phone_encoder[0].in_features == context * len(PHONES)
    windows, identity = torch.randn(1, 30, 28, 80), torch.rand(1, 68, 2)
    phones = torch.eye(len(PHONES))[torch.randint(len(PHONES), (1, 30, CONTEXT))]
    with torch.no_grad():
        before = model(windows, identity, phones)["landmarks"]
        for row in range(CONTEXT):
            changed = phones.clone()
            changed[:, :, row] = phones[:, :, row].roll(1, dims=-1)  # another phone in this row
            moved = not torch.equal(model(windows, identity, changed)["landmarks"], before)
            assert moved == (read[0] <= row < read[1]), row


def test_a_model_reading_later_phones_streams_exactly():
    torch.manual_seed(0)
    model = AudioToLandmarks(80, 32, 32, 2, "lstm", phone_input=True, phone_offset=2).eval()
    torch.nn.init.normal_(model.decoder[-1].weight, std=0.1)
    windows, identity = torch.randn(1, 70, 28, 80), torch.rand(1, 68, 2)
    phones = torch.eye(len(PHONES))[torch.randint(len(PHONES), (1, 70, CONTEXT))]
    with torch.no_grad():
        whole = model(windows, identity, phones)["landmarks"][0]
    stream = LandmarkStream(model, identity[0])
    parts = [stream.push(windows[0, i : i + 23], phones[0, i : i + 23]) for i in range(0, 70, 23)]
    assert torch.allclose(torch.cat(parts + [stream.finish()]), whole, atol=1e-5)


@pytest.mark.parametrize(
    ("context", "offset", "message"),
    [
        (0, 0, "odd whole number from 1 to 9"),
        (4, 0, "odd whole number from 1 to 9"),
        (CONTEXT + 2, 0, "odd whole number from 1 to 9"),
        (5.0, 0, "phone_context must be a whole number"),
        (True, 0, "phone_context must be a whole number"),
        (5, 3, r"phone_offset must be within ±2 for phone_context 5"),
        (CONTEXT, 1, r"phone_offset must be within ±0"),
        (5, 1.5, "phone_offset must be a whole number"),
    ],
)
def test_a_phone_window_that_is_not_odd_or_leaves_the_data_is_one_clear_error(context, offset, message):
    from lightning_modules import LandmarkModule
    from talkface.errors import TalkfaceError

    with pytest.raises(TalkfaceError, match=message):
        LandmarkModule(phone_input=True, phone_context=context, phone_offset=offset)
