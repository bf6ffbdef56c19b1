"""Lip sync of whole clips in `talkface evaluate`: LSE-D, LSE-C and the audio-video offset.

Measured by a sync expert (talkface/sync/experts.py: the released one by default, or the official
SyncNet) on *every* frame of each test clip, since the expert reads 5 consecutive frames and
their 0.2 s of sound; the end-to-end run generates them all for this, besides the strided frames
the other metrics score. Three rows per end-to-end run:

- the generated clip (stage 1 from the audio, stage 2 drawing every frame), under the clip's sound;
- `real`: the clip's own frames and sound (what a real speaker scores with this expert);
- `still`: the photo (the clip's reference frame) held still under the sound: the copy-the-photo
  baseline, whose lips never move.

The two baselines do not depend on the models, so the runner takes them from the first run. The
scores are the metrics of talkface/metrics/lip_sync.py, per clip then averaged over clips.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MetricCollection

REAL_PREFIX = "real_video"
STILL_PREFIX = "still_photo"
LIP_SYNC_METRICS = ("lse_d", "lse_c", "offset", "in_sync")


def update_lip_sync(metrics: MetricCollection, expert, frames: torch.Tensor, audio: torch.Tensor) -> None:
    """Score a batch of clips: (B, T, 3, S, S) uint8 frames, (B, T * 640) float 16 kHz audio.

    Crops of another size than the expert was trained on are resized to its size first."""
    size = int(expert.crop_size)
    for clip, sound in zip(frames, audio, strict=True):
        if clip.shape[-1] != size or clip.shape[-2] != size:
            clip = F.interpolate(clip.float(), size=(size, size), mode="bilinear", align_corners=False)
            clip = clip.round().clamp(0, 255).to(torch.uint8)
        video, heard = expert.embed(clip, sound.detach().float().cpu().numpy())
        for metric in metrics.values():
            metric.update(video.to(metric.device), heard.to(metric.device))


def clip_counts(metrics: MetricCollection) -> int:
    """Clips scored (summed over processes)."""
    from talkface.metrics.face_regions import synced_states

    return int(synced_states(metrics["lse_d"], ("clips",))["clips"])
