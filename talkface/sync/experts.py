"""Sync experts behind one interface: aligned face crops and audio in, per-frame embeddings out.

`embed(frames, audio)` takes a clip's aligned crops ((T, 3, S, S) uint8, RGB, as `talkface
prepare` makes them) and its 16 kHz audio (T * 640 samples), and returns the video and audio
embeddings ((N, E) each) of the centre frames 2 .. T-3: the metrics (talkface/metrics/lip_sync.py)
take any expert's. Two kinds:

- `ProjectExpert`: talkface's own (`SyncExpertModule`, a .ckpt or a release; the released one by
  default), on the lower face and the log-mel features it was trained on;
- `OfficialExpert`: the published SyncNet (`syncnet_v2.model`, official_syncnet.py), on the
  whole face crop resized to 224 and MFCCs, as its own evaluation feeds it.

Each carries a `name` that every result quotes: distances from two experts are not comparable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from talkface.audio.features import FeatureConfig, compute_features
from talkface.errors import TalkfaceError
from talkface.sync.clips import HALF, audio_clips, centre_frames, mouth_clips
from talkface.sync.network import FRAMES

BATCH = 256  # centre frames embedded at once


class ProjectExpert:
    """talkface's own expert (lightning_modules/sync_expert.py)."""

    def __init__(self, module, facts: dict, name: str) -> None:
        self.module = module.eval()
        self.features = FeatureConfig(**facts["features"]) if "features" in facts else FeatureConfig()
        self.crop_size = int(facts.get("crop_size", 128))  # the aligned crops it was trained on
        self.name = name

    @property
    def network(self) -> torch.nn.Module:
        """The torch module behind the expert (to move it to a device with its owner)."""
        return self.module

    @torch.no_grad()
    def embed(self, frames: torch.Tensor, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        num_frames = len(frames)
        _check_length(num_frames)
        device = _device(self.module)
        frames = frames.to(device)
        features = compute_features(audio, num_frames, self.features)
        windows = features.unfold(0, self.features.window, self.features.steps_per_frame)[:num_frames]
        windows = windows.transpose(1, 2)[None].to(device)  # (1, T, W, D)
        steps = FRAMES * self.features.steps_per_frame
        videos, audios = [], []
        for chunk in centre_frames(num_frames).split(BATCH):
            videos.append(self.module.expert.embed_video(mouth_clips(frames[None], chunk[None])))
            audios.append(self.module.expert.embed_audio(audio_clips(windows, chunk[None], steps)))
        return torch.cat(videos), torch.cat(audios)


class OfficialExpert:
    """The published SyncNet v2 (official_syncnet.py), given its weights file."""

    def __init__(self, network, name: str) -> None:
        self.network = network.eval()
        self.crop_size = 224  # crops made at SyncNet's own input size, not resized up
        self.name = name

    @torch.no_grad()
    def embed(self, frames: torch.Tensor, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        from talkface.sync.official_syncnet import IMAGE_SIZE, mfcc

        num_frames = len(frames)
        _check_length(num_frames)
        device = _device(self.network)
        faces = F.interpolate(
            frames.to(device).float(), size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False
        )
        faces = faces.flip(1)  # RGB → BGR, as OpenCV gives SyncNet its frames
        coefficients = torch.from_numpy(mfcc(np.asarray(audio, np.float32)[: num_frames * 640])).T.to(
            device
        )  # (13, rows)
        rows = 4 * num_frames
        coefficients = F.pad(coefficients, (0, max(0, rows - coefficients.shape[1])))
        videos, audios = [], []
        for chunk in centre_frames(num_frames).split(BATCH // 8):
            starts = chunk - HALF  # SyncNet's window of frame i is frames i .. i+4, MFCC rows 4i .. 4i+19
            clips = torch.stack([faces[s : s + FRAMES] for s in starts.tolist()])  # (n, 5, 3, 224, 224)
            videos.append(self.network.forward_lip(clips.permute(0, 2, 1, 3, 4)))
            mfccs = torch.stack([coefficients[:, 4 * s : 4 * s + 4 * FRAMES] for s in starts.tolist()])
            audios.append(self.network.forward_aud(mfccs[:, None]))
        return torch.cat(videos), torch.cat(audios)


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _check_length(num_frames: int) -> None:
    if num_frames < FRAMES:
        raise TalkfaceError(f"the clip has {num_frames} frames; a sync expert needs at least {FRAMES}")


def load_expert(path: str | Path | None = None, official: str | Path | None = None, option: str = "--expert"):
    """The project's expert from `path` (a .ckpt or .safetensors; default: the released one), or the
    official SyncNet from `official` (syncnet_v2.model); errors name the file as `option` (and
    `--syncnet`) gave it."""
    if official is not None:
        from talkface.sync.official_syncnet import load_syncnet_v2

        return OfficialExpert(load_syncnet_v2(official, f"--syncnet {official}"), f"SyncNet v2 ({Path(official).name})")
    from talkface.generation.checkpoints import load_model

    if path is None:
        from talkface.weights import released_sync_expert

        path = released_sync_expert()
    from lightning_modules import SyncExpertModule

    loaded = load_model(path, option, SyncExpertModule)
    return ProjectExpert(loaded.model, loaded.facts, f"talkface sync expert ({Path(path).name})")
