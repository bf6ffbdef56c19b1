"""The lip-sync expert's parts: networks (ours and the official SyncNet's shapes and key names),
the crops and feature rows it sees, the LSE-D / LSE-C / offset metrics against a numpy reference
(per batch, accumulated and merged as DDP merges them), the module's loss, and `talkface sync`'s
one-line errors. The acceptance test on real video is tests/test_sync.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_modules import SyncExpertModule
from talkface.cli import main
from talkface.media.wav_writer import write_wav
from talkface.metrics.lip_sync import (
    InSyncRate,
    LSEConfidence,
    LSEDistance,
    SyncOffsetError,
    clip_sync_scores,
    distance_curve,
)
from talkface.sync.clips import audio_clips, centre_frames, mouth_clips
from talkface.sync.network import SyncExpertNetwork, mouth_box
from talkface.sync.official_syncnet import SyncNetV2, load_syncnet_v2, mfcc


def unit(*shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(*shape, generator=generator), dim=-1)


# ---- numpy reference of the scores (SyncNet's evaluation, written out plainly)
def np_scores(video: np.ndarray, audio: np.ndarray, max_offset: int) -> tuple[float, float, int]:
    curve = []
    for k in range(-max_offset, max_offset + 1):
        pairs = [(t, t + k) for t in range(len(video)) if 0 <= t + k < len(audio)]
        curve.append(np.mean([np.linalg.norm(video[t] - audio[u]) for t, u in pairs]) if pairs else np.nan)
    curve = np.array(curve)
    valid = np.sort(curve[~np.isnan(curve)])
    best = int(np.nanargmin(curve))
    lower_median = valid[(len(valid) - 1) // 2]
    return float(curve[best]), float(lower_median - curve[best]), best - max_offset


@pytest.mark.parametrize("shift", [-6, -3, 0, 2, 5])
def test_the_offset_is_how_late_the_sound_comes(shift):
    video = unit(40, 16)
    audio = torch.roll(video, shift, dims=0)  # audio frame t + shift carries video frame t
    scores = clip_sync_scores(video, audio, max_offset=15)
    assert int(scores["offset"]) == shift
    assert scores["lse_d"].item() == pytest.approx(0.0, abs=1e-6)
    assert scores["lse_c"].item() > 1.0  # random unit vectors are ~1.4 apart


def test_scores_match_the_numpy_reference():
    for seed in range(5):
        video, audio = unit(23, 8, seed=seed), unit(23, 8, seed=seed + 100)
        audio = 0.7 * audio + 0.3 * torch.roll(video, seed - 2, dims=0)
        scores = clip_sync_scores(video, audio, max_offset=15)
        lse_d, lse_c, offset = np_scores(video.numpy(), audio.numpy(), 15)
        assert scores["lse_d"].item() == pytest.approx(lse_d, rel=1e-6)
        assert scores["lse_c"].item() == pytest.approx(lse_c, rel=1e-6)
        assert int(scores["offset"]) == offset


def test_offsets_beyond_the_clip_are_left_out():
    curve = distance_curve(unit(5, 4), unit(5, 4, seed=1), max_offset=15)
    assert torch.isnan(curve).sum() == 2 * (15 - 4)  # |k| >= 5 has no overlapping frame
    assert not torch.isnan(curve[15 - 4 : 15 + 5]).any()


def _batches():
    for seed in range(3):
        video = unit(4, 30, 8, seed=seed)
        audio = torch.stack([torch.roll(v, s, dims=0) for v, s in zip(video, [0, 1, -4, 7], strict=True)])
        yield video, 0.8 * audio + 0.2 * unit(4, 30, 8, seed=seed + 50)


def test_metrics_are_means_over_clips_per_batch_and_accumulated():
    metrics = {"lse_d": LSEDistance(), "lse_c": LSEConfidence(), "offset": SyncOffsetError(), "in_sync": InSyncRate()}
    per_clip = []
    for video, audio in _batches():
        batch = [np_scores(v.numpy(), a.numpy(), 15) for v, a in zip(video, audio, strict=True)]
        per_clip += batch
        for name, metric in metrics.items():
            value = metric(video, audio).item()
            expected = {
                "lse_d": np.mean([b[0] for b in batch]),
                "lse_c": np.mean([b[1] for b in batch]),
                "offset": np.mean([abs(b[2]) for b in batch]),
                "in_sync": np.mean([abs(b[2]) <= 1 for b in batch]),
            }[name]
            assert value == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert metrics["lse_c"].compute().item() == pytest.approx(np.mean([b[1] for b in per_clip]), rel=1e-5)
    assert metrics["in_sync"].compute().item() == pytest.approx(0.5)  # offsets 0, 1 in; -4, 7 out


def test_states_are_sums_so_two_processes_give_the_one_process_value():
    """DDP reduces each state with its dist_reduce_fx (sum here); merge_state applies the same."""
    batches = list(_batches())
    whole, first, second = LSEConfidence(), LSEConfidence(), LSEConfidence()
    for index, (video, audio) in enumerate(batches):
        whole.update(video, audio)
        (first if index % 2 else second).update(video, audio)
    assert set(first._reductions.values()) == {first._reductions["total"]}
    first.merge_state(second)
    assert first.compute().item() == pytest.approx(whole.compute().item(), rel=1e-9)
    assert torch.isnan(LSEDistance().compute())


# ---- what the expert sees
def test_mouth_clips_take_the_five_frames_around_each_centre_and_the_lower_face():
    frames = torch.arange(9, dtype=torch.uint8).view(1, 9, 1, 1, 1).expand(2, 9, 3, 128, 128).clone()
    rows, cols = mouth_box(128)
    frames[:, :, :, rows, cols] += 100  # only the lower face is brighter
    centres = torch.tensor([[2, 6], [4, 5]])
    clips = mouth_clips(frames, centres)
    assert clips.shape == (4, 5, 3, rows.stop - rows.start, cols.stop - cols.start)
    assert (clips[:, :, 0, 0, 0] * 255).round().tolist() == [
        [100 + t for t in range(c - 2, c + 3)] for c in (2, 6, 4, 5)
    ]
    assert centre_frames(9).tolist() == [2, 3, 4, 5, 6]


def test_audio_clips_take_the_middle_rows_of_each_window():
    windows = torch.arange(28, dtype=torch.float32).view(1, 1, 28, 1).expand(1, 9, 28, 80)
    clips = audio_clips(windows, torch.tensor([[3]]), steps=20)
    assert clips.shape == (1, 20, 80)
    assert clips[0, :, 0].tolist() == list(range(4, 24))  # frames t-2 .. t+2 of a 7-frame window


@pytest.mark.parametrize("channels", [1, 3])
def test_the_project_expert_gives_unit_embeddings(channels):
    network = SyncExpertNetwork(channels=channels, width=8, embedding=16).eval()
    video = network.embed_video(torch.rand(3, 5, 3, 64, 96))
    audio = network.embed_audio(torch.randn(3, 20, 80))
    assert video.shape == audio.shape == (3, 16)
    assert torch.allclose(video.norm(dim=1), torch.ones(3)) and torch.allclose(audio.norm(dim=1), torch.ones(3))


def test_the_module_trains_on_a_batch_and_masks_the_neighbouring_frames():
    module = SyncExpertModule(width=8, embedding=16, centres_per_clip=6)
    batch = {
        "frames": torch.randint(0, 255, (3, 12, 3, 128, 128), dtype=torch.uint8),
        "audio_windows": torch.randn(3, 12, 28, 80),
    }
    loss = module.training_step(batch, 0)
    assert torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    video = unit(1, 3, 16)
    audio = video.clone()
    audio[0, 1] = video[0, 0]  # the second centre's audio looks like the first centre's lips
    # one frame apart, that audio is a near-positive and left out; four frames apart, a negative
    near, _ = module.contrastive_loss(video, audio, torch.tensor([[2, 3, 7]]))
    far, _ = module.contrastive_loss(video, audio, torch.tensor([[2, 6, 10]]))
    assert near.item() < far.item() - 0.2


# ---- the official SyncNet: the published architecture and key names (the weights are not here)
PUBLISHED_SHAPES = {
    "netcnnaud.0.weight": (64, 1, 3, 3),
    "netcnnaud.1.running_var": (64,),
    "netcnnaud.4.weight": (192, 64, 3, 3),
    "netcnnaud.8.weight": (384, 192, 3, 3),
    "netcnnaud.11.weight": (256, 384, 3, 3),
    "netcnnaud.14.weight": (256, 256, 3, 3),
    "netcnnaud.18.weight": (512, 256, 5, 4),
    "netcnnaud.19.num_batches_tracked": (),
    "netfcaud.0.weight": (512, 512),
    "netfcaud.1.running_mean": (512,),
    "netfcaud.3.weight": (1024, 512),
    "netcnnlip.0.weight": (96, 3, 5, 7, 7),
    "netcnnlip.4.weight": (256, 96, 1, 5, 5),
    "netcnnlip.8.weight": (256, 256, 1, 3, 3),
    "netcnnlip.11.weight": (256, 256, 1, 3, 3),
    "netcnnlip.14.weight": (256, 256, 1, 3, 3),
    "netcnnlip.18.weight": (512, 256, 1, 6, 6),
    "netcnnlip.19.bias": (512,),
    "netfclip.0.weight": (512, 512),
    "netfclip.3.bias": (1024,),
}


def test_the_official_syncnet_has_the_published_key_names_and_shapes():
    state = SyncNetV2().state_dict()
    assert {k: tuple(state[k].shape) for k in PUBLISHED_SHAPES} == PUBLISHED_SHAPES
    assert {k.split(".")[0] for k in state} == {"netcnnaud", "netfcaud", "netcnnlip", "netfclip"}
    assert len(state) == 102  # 14 conv / linear layers and 12 batch norms, as in SyncNetModel.py


def test_the_official_syncnet_embeds_its_inputs():
    network = SyncNetV2().eval()
    with torch.no_grad():
        assert network.forward_aud(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert network.forward_lip(torch.randn(2, 3, 5, 224, 224)).shape == (2, 1024)


def test_the_official_weights_load_from_a_state_dict_file_and_wrong_files_are_one_line(tmp_path):
    good = tmp_path / "syncnet_v2.model"
    torch.save(SyncNetV2().state_dict(), good)
    assert isinstance(load_syncnet_v2(good), SyncNetV2)
    wrong = tmp_path / "other.model"
    torch.save({"conv.weight": torch.zeros(3)}, wrong)
    with pytest.raises(Exception, match="not the official SyncNet v2 weights"):
        load_syncnet_v2(wrong)
    unsafe = tmp_path / "unsafe.model"
    torch.save({"x": np.zeros(2).dtype}, unsafe)  # a pickled object: refused by weights_only
    with pytest.raises(Exception, match="refused|not a readable"):
        load_syncnet_v2(unsafe)


def test_mfcc_gives_13_coefficients_every_10_ms():
    audio = np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000).astype(np.float32) * 0.3
    coefficients = mfcc(audio)
    assert coefficients.shape == (99, 13)  # python_speech_features' frame count for 1 s
    assert np.isfinite(coefficients).all()


# ---- `talkface sync`: mistakes are one line and exit code 2, before any model loads
def test_sync_command_errors_are_one_line(tmp_path, capsys):
    video = tmp_path / "v.mp4"
    cases = [
        (["sync", str(tmp_path / "missing.mp4")], "no such file"),
        (["sync", str(video), "--audio", str(tmp_path / "missing.wav")], "no such file"),
        (["sync", str(video), "--expert", "a.ckpt", "--syncnet", "b.model"], "not both"),
        (["sync", str(video), "--max-offset", "0"], "--max-offset"),
        (["sync", str(video), "--syncnet", str(tmp_path / "none.model")], "no such file"),
    ]
    video.write_bytes(b"not a video")
    for argv, message in cases:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error


# ---- experts behind one interface, and the expert's release
def test_an_exported_expert_loads_and_embeds_a_clip(tmp_path):
    from talkface.generation.checkpoints import save_untrained
    from talkface.generation.release import export_model
    from talkface.sync.experts import load_expert

    checkpoint = save_untrained(SyncExpertModule(width=8, embedding=16), tmp_path / "expert.ckpt")
    out, stage, _ = export_model(checkpoint, tmp_path / "expert.safetensors", fp16=True)
    assert stage == "SyncExpertModule"
    expert = load_expert(out)
    assert "expert.safetensors" in expert.name and expert.crop_size == 128
    frames = torch.randint(0, 255, (12, 3, 128, 128), dtype=torch.uint8)
    video, audio = expert.embed(frames, np.random.default_rng(0).normal(0, 0.1, 12 * 640).astype(np.float32))
    assert video.shape == audio.shape == (8, 16)  # centres 2 .. 9


def test_the_official_expert_embeds_a_clip_through_the_same_interface(tmp_path):
    from talkface.sync.experts import load_expert

    weights = tmp_path / "syncnet_v2.model"
    torch.save(SyncNetV2().state_dict(), weights)
    expert = load_expert(official=weights)
    assert expert.name == "SyncNet v2 (syncnet_v2.model)" and expert.crop_size == 224
    frames = torch.randint(0, 255, (7, 3, 224, 224), dtype=torch.uint8)
    video, audio = expert.embed(frames, np.random.default_rng(0).normal(0, 0.1, 7 * 640).astype(np.float32))
    assert video.shape == audio.shape == (3, 1024)


def test_a_stage_checkpoint_is_not_taken_for_an_expert(tmp_path, capsys):
    from lightning_modules import LandmarkModule
    from talkface.generation.checkpoints import save_untrained

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(16000, np.float32), 16000)
    landmark = save_untrained(LandmarkModule(num_words=2, hidden=16, audio_dim=16), tmp_path / "landmark.ckpt")
    assert main(["sync", str(video), "--audio", str(wav), "--expert", str(landmark)]) == 2
    error = capsys.readouterr().err
    assert "this is a stage-1 (landmark) checkpoint; --expert needs a lip-sync expert one" in error
    assert error.count("\n") == 1
