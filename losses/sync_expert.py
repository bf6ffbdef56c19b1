"""Sync-expert loss: a frozen lip-sync expert judges whether the generated mouths speak the sound.

Stage 2 (FaceGenModule) draws, per clip, a run of `frames_per_clip` *consecutive* frames when this
term is configured (it reads `audio_windows`, which makes the module pick runs and load the
audio features); every frame of the run with two neighbours on each side is a centre. For each
centre the expert (talkface/sync: the released one by default) embeds the lower face of the 5
generated frames around it and the 0.2 s of audio features under them, and the term is the
cosine distance between the two (Wav2Lip's expert loss, on this project's expert), so
`frames_per_clip` must be at least 5. The crop is cut from the generated frames by slicing, so
the gradient reaches the generator; the expert itself never learns (no gradient, no running
statistics, kept out of the model's state dict and its checkpoints).

`mode: contrastive` instead asks each generated mouth to pick its own sound among the sounds of
every centre of the batch (InfoNCE at the expert's training temperature), pushing it away from
the wrong sounds as well as towards the right one.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.errors import TalkfaceError
from talkface.sync.clips import HALF, audio_clips, centre_frames, mouth_clips
from talkface.sync.network import FRAMES

MODES = ("distance", "contrastive")


@register_loss("sync_expert")
class SyncExpertLoss(LossTerm):
    """1 - cos(expert's video embedding of 5 generated frames, its audio embedding of their sound)."""

    batch_fields = ("audio_windows",)
    output_fields = ("image",)

    def __init__(
        self,
        weight: float = 0.1,
        start_step: int = 0,
        expert: str | None = None,
        mode: str = "distance",
        temperature: float = 0.07,
    ) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            start_step: the term joins the total from this global step on.
            expert: the sync expert, a .ckpt of `talkface fit -c sync/real` or a .safetensors
                export; default: the released one. Its audio features must be the data's.
            mode: "distance" (1 - cosine similarity of each generated mouth with its own sound)
                or "contrastive" (InfoNCE of each mouth over the sounds of every centre in the batch).
            temperature: the contrastive softmax temperature (the expert was trained at 0.07).
        """
        super().__init__(weight, start_step)
        if mode not in MODES:
            raise TalkfaceError(f"sync_expert: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if temperature <= 0:
            raise TalkfaceError(f"sync_expert: temperature must be above 0, got {temperature}")
        from talkface.sync.experts import load_expert

        loaded = load_expert(expert, option="sync_expert expert")
        hparams = loaded.module.hparams
        network = loaded.module.expert.eval().requires_grad_(False)
        # Out of the module tree: not trained, not switched to train mode with the model, not saved.
        object.__setattr__(self, "_network", network)
        self._features = loaded.features  # the expert's audio features (FeatureConfig)
        self.expert_name = loaded.name
        self.crop_size = loaded.crop_size
        self.feature_dim = int(hparams.feature_dim)
        self.steps = FRAMES * int(hparams.steps_per_frame)
        self.mode = mode
        self.temperature = float(temperature)
        self.expert = str(expert) if expert is not None else None

    def attach(self, module: torch.nn.Module) -> None:
        frames = getattr(getattr(module, "hparams", {}), "frames_per_clip", None)
        if frames is not None and frames < FRAMES:
            raise TalkfaceError(
                f"the sync_expert loss needs runs of at least {FRAMES} consecutive frames; "
                f"set model.init_args.frames_per_clip to {FRAMES} or more (it is {frames})"
            )

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        windows = batch["audio_windows"]  # (B, K, W, D): the features around each frame of each run
        if windows.dim() != 4 or windows.shape[1] < FRAMES:
            raise TalkfaceError(
                f"the sync_expert loss needs (clips, >= {FRAMES} consecutive frames, rows, features) audio "
                f"windows, got {tuple(windows.shape)}"
            )
        if windows.shape[-1] != self.feature_dim:
            raise TalkfaceError(
                f"the sync expert ({self.expert_name}) hears {self.feature_dim} audio features per row, "
                f"the data has {windows.shape[-1]}: prepare the data with the expert's features"
            )
        clips, count = windows.shape[:2]
        image = outputs["image"]  # (B * K, 3, S, S) in [-1, 1], the runs' frames in order
        network = self._network
        if next(network.parameters()).device != image.device:
            network.to(image.device)
        frames = (image.float() + 1) / 2
        if frames.shape[-1] != self.crop_size:
            frames = F.interpolate(frames, size=(self.crop_size,) * 2, mode="bilinear", align_corners=False)
        frames = frames.reshape(clips, count, *frames.shape[1:])
        centres = centre_frames(count).to(image.device).expand(clips, -1)
        video = network.embed_video(mouth_clips(frames, centres))
        audio = network.embed_audio(audio_clips(windows.float(), centres, self.steps))
        if self.mode == "distance":
            return (1 - (video * audio).sum(dim=1)).mean()
        logits = video @ audio.T / self.temperature
        target = torch.arange(len(video), device=logits.device)
        if len(video) > 1:  # the same run's other centres overlap by 80 %: not negatives
            clip = torch.arange(clips, device=logits.device).repeat_interleave(count - 2 * HALF)
            near = (clip[:, None] == clip[None]) & (target[:, None] != target[None])
            logits = logits.masked_fill(near, float("-inf"))
        return F.cross_entropy(logits, target)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, expert={Path(self.expert).name if self.expert else 'released'}, mode={self.mode}"
        )
