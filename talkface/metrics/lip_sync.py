"""Lip-sync scores from a sync expert's embeddings: LSE-D, LSE-C and the audio-video offset.

As SyncNet's evaluation (Chung & Zisserman 2016; the LSE-D / LSE-C of Wav2Lip, Prajwal et al.
2020), per clip:

- the **distance curve**: for every offset k in [-max_offset, max_offset] frames, the mean over
  time of the Euclidean distance between the video embedding of frame t and the audio embedding
  of frame t + k (over the frames where both exist);
- **LSE-D**: the curve's minimum (lower: lips and sound agree better);
- **LSE-C**: the curve's median minus its minimum, the confidence (higher: a clearer match);
- **offset**: the k of the minimum, in frames; positive when the sound comes *late* (audio
  frame t + k belongs to video frame t).

Dataset scores are means over clips. The numbers depend on the expert that made the embeddings
(the project's, or the official SyncNet): every report names it.

States are per-clip sums and a clip count, reduced by sum, so the value is the same on one
process or split over many (DDP). `compute()` is NaN before any clip.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection

DEFAULT_MAX_OFFSET = 15  # frames either way, as SyncNet's evaluation
IN_SYNC_FRAMES = 1  # |offset| up to this counts as in sync


def distance_curve(video: Tensor, audio: Tensor, max_offset: int = DEFAULT_MAX_OFFSET) -> Tensor:
    """(2 * max_offset + 1,) mean distance per offset for one clip's (N, E) embeddings; offsets
    with no overlapping frames are NaN."""
    if video.shape != audio.shape or video.dim() != 2:
        raise ValueError(
            f"video and audio embeddings must both be (N, E), got {tuple(video.shape)}, {tuple(audio.shape)}"
        )
    frames = len(video)
    curve = torch.full((2 * max_offset + 1,), float("nan"), dtype=torch.float64, device=video.device)
    for position, offset in enumerate(range(-max_offset, max_offset + 1)):
        first, stop = max(0, -offset), min(frames, frames - offset)
        if stop > first:
            pairs = video[first:stop].double() - audio[first + offset : stop + offset].double()
            curve[position] = torch.linalg.vector_norm(pairs, dim=1).mean()
    return curve


def sync_scores(curve: Tensor) -> dict[str, Tensor]:
    """LSE-D, LSE-C and the offset (frames) of one clip's distance curve (float64 scalars). The
    median is torch's (the lower middle value for an even count), as SyncNet's evaluation."""
    max_offset = (len(curve) - 1) // 2
    valid = curve[~torch.isnan(curve)]
    if not len(valid):
        raise ValueError("the distance curve has no value: the clip is too short for the expert")
    position = torch.argmin(torch.nan_to_num(curve, nan=float("inf")))
    minimum = curve[position]
    return {"lse_d": minimum, "lse_c": valid.median() - minimum, "offset": (position - max_offset).double()}


def clip_sync_scores(video: Tensor, audio: Tensor, max_offset: int = DEFAULT_MAX_OFFSET) -> dict[str, Tensor]:
    """Scores of one clip from its (N, E) video and audio embeddings."""
    return sync_scores(distance_curve(video, audio, max_offset))


class _SyncScore(Metric):
    """Mean over clips of one per-clip score; `update` takes a batch of clips' embeddings."""

    score = ""
    higher_is_better = False
    full_state_update = False

    def __init__(self, max_offset: int = DEFAULT_MAX_OFFSET, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_offset = max_offset
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("clips", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, video: Tensor, audio: Tensor) -> None:
        """video, audio: (B, N, E) embeddings of B clips (N centre frames each), or (N, E) for one."""
        if video.dim() == 2:
            video, audio = video[None], audio[None]
        for clip_video, clip_audio in zip(video, audio, strict=True):
            self.total += self.value(clip_sync_scores(clip_video, clip_audio, self.max_offset))
            self.clips += 1

    def value(self, scores: dict[str, Tensor]) -> Tensor:
        return scores[self.score]

    def compute(self) -> Tensor:
        return (self.total / self.clips).float() if self.clips > 0 else torch.tensor(float("nan"))


class LSEDistance(_SyncScore):
    """LSE-D: mean over clips of the distance curve's minimum (lower is better)."""

    score = "lse_d"


class LSEConfidence(_SyncScore):
    """LSE-C: mean over clips of the curve's median minus its minimum (higher is better)."""

    score = "lse_c"
    higher_is_better = True


class SyncOffsetError(_SyncScore):
    """Mean over clips of |offset| in frames: 0 when every clip's sound and lips line up."""

    score = "offset"

    def value(self, scores: dict[str, Tensor]) -> Tensor:
        return scores["offset"].abs()


class InSyncRate(_SyncScore):
    """Fraction of clips whose offset is within ±1 frame."""

    score = "offset"
    higher_is_better = True

    def value(self, scores: dict[str, Tensor]) -> Tensor:
        return (scores["offset"].abs() <= IN_SYNC_FRAMES).double()


def lip_sync_metrics(prefix: str, max_offset: int = DEFAULT_MAX_OFFSET) -> MetricCollection:
    """LSE-D, LSE-C, mean |offset| (frames) and the share of clips in sync (±1 frame)."""
    return MetricCollection(
        {
            "lse_d": LSEDistance(max_offset),
            "lse_c": LSEConfidence(max_offset),
            "offset": SyncOffsetError(max_offset),
            "in_sync": InSyncRate(max_offset),
        },
        prefix=prefix,
        compute_groups=False,
    )
