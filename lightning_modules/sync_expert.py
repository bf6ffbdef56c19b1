"""The lip-sync expert: lower-face video and audio embedded so that matching 0.2 s pairs are close.

Trained contrastively on the prepared windows: for every sampled centre frame of every clip in
the batch, its 5 lower faces must pick their own audio among the audio of the other sampled
centres of the same clip (the same voice, shifted in time) and of the other clips (InfoNCE, both
ways). The same clip's audio up to `near_frames` away is left out of the negatives: one frame away
it overlaps the true 0.2 s by 80 %.

Validation and test measure what the expert is for: per clip, the offset it finds between the
clip's own lips and sound (0 for real video), LSE-D and LSE-C (talkface/metrics/lip_sync.py),
and, in test, the same with another clip's audio (`test/mismatched/`: the next clip of the batch),
which must score a lower confidence. Validation leaves that pairing out: it depends on how the clips
are batched, so it would differ between one process and several.
"""

from __future__ import annotations

import lightning as L
import torch
from torch.nn import functional as F
from torchmetrics import MetricCollection

from lightning_modules.data_facts import store_data_facts
from talkface.audio.features import FeatureConfig
from talkface.checks import check_number
from talkface.errors import TalkfaceError
from talkface.metrics.lip_sync import DEFAULT_MAX_OFFSET, lip_sync_metrics
from talkface.sync.clips import HALF, audio_clips, centre_frames, mouth_clips
from talkface.sync.network import FRAMES, SyncExpertNetwork


class SyncExpertModule(L.LightningModule):
    """A lip-sync expert (SyncNet-like) trained on the same prepared data as the two stages."""

    # What this module asks the DataModule for: aligned crops and the audio features around them.
    data_fields = ("id", "frames", "audio_windows")

    def __init__(
        self,
        channels: int = 1,
        feature_dim: int = 80,
        steps_per_frame: int = 4,
        width: int = 32,
        embedding: int = 128,
        centres_per_clip: int = 12,
        temperature: float = 0.07,
        near_frames: int = 1,
        dropout: float = 0.0,
        augment: bool = False,
        max_offset: int = DEFAULT_MAX_OFFSET,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_decay_epochs: int = 0,
    ) -> None:
        """
        Args:
            channels: 1 (grey lower faces) or 3 (colour).
            feature_dim: audio feature values per step (80 log-mel bins); must match the data.
            steps_per_frame: audio feature rows per video frame (4 at 100 rows/s and 25 fps); the
                expert hears 5 frames' worth, the same 0.2 s it sees. Checked against the data.
            width: channels of the first convolution of both encoders (then 2x, 4x, 4x).
            embedding: size of the shared embedding space.
            centres_per_clip: training centre frames sampled per clip (each one a positive pair
                and a negative for all the others).
            temperature: softmax temperature of the contrastive loss over cosine similarities.
            near_frames: the same clip's audio this many frames or fewer from the true pairing is
                left out of the negatives (one frame away it overlaps the true 0.2 s by 80 %); 0
                makes every other audio a negative, which sharpens the offset the expert finds.
            dropout: dropout probability before each encoder's last layer.
            augment: training only: each clip's lower faces are mirrored left-right at random (lip
                sync does not care which side is which) and a random band of a quarter of the audio
                features is blanked per sample, so the expert learns the speech, not the speaker.
            max_offset: offsets tried either way, in frames, by the validation and test scores.
            lr: Adam learning rate.
            weight_decay: Adam's L2 penalty on the weights.
            lr_decay_epochs: cosine decay of the learning rate to 0 over this many epochs; 0 keeps
                it constant.
        """
        super().__init__()
        check_number("model.init_args.lr", lr, above=0)
        check_number("model.init_args.temperature", temperature, above=0)
        check_number("model.init_args.centres_per_clip", centres_per_clip, 2, whole=True)
        check_number("model.init_args.max_offset", max_offset, 1, whole=True)
        check_number("model.init_args.near_frames", near_frames, 0, whole=True)
        check_number("model.init_args.weight_decay", weight_decay, 0)
        check_number("model.init_args.lr_decay_epochs", lr_decay_epochs, 0, whole=True)
        self.save_hyperparameters()
        if channels not in (1, 3):
            raise TalkfaceError(f"model.init_args.channels must be 1 (grey) or 3 (colour), got {channels}")
        self.expert = SyncExpertNetwork(
            channels, feature_dim, FRAMES * steps_per_frame, width, embedding, dropout=dropout
        )
        self.val_metrics = self._metrics("val/")
        self.test_metrics = self._metrics("test/")
        self.test_mismatched = self._metrics("test/mismatched/")

    def _metrics(self, prefix: str) -> MetricCollection:
        return lip_sync_metrics(prefix, self.hparams.max_offset)

    def setup(self, stage: str) -> None:
        """The data must have the audio features the expert was built for."""
        datamodule = getattr(self.trainer, "datamodule", None)
        features = (getattr(datamodule, "meta", None) or {}).get("features") if datamodule is not None else None
        if not features:
            return
        config = FeatureConfig(**features)
        steps, dim = config.steps_per_frame, config.dim
        if (steps, dim) != (self.hparams.steps_per_frame, self.hparams.feature_dim):
            raise TalkfaceError(
                f"the data has {dim} audio features x {steps} rows per frame, the sync expert expects "
                f"{self.hparams.feature_dim} x {self.hparams.steps_per_frame}; set model.init_args.feature_dim / steps_per_frame"
            )

    # ---- model
    def embed(self, frames: torch.Tensor, audio_windows: torch.Tensor, centres: torch.Tensor, augment: bool = False):
        """(B, T, 3, S, S) uint8 crops, (B, T, W, D) feature windows, (B, K) centres → video and
        audio embeddings, each (B, K, E)."""
        steps = FRAMES * self.hparams.steps_per_frame
        mouths = mouth_clips(frames, centres)
        sounds = audio_clips(audio_windows, centres, steps)
        if augment:
            mouths, sounds = self._augment(mouths, sounds)
        video = self.expert.embed_video(mouths)
        audio = self.expert.embed_audio(sounds)
        shape = (*centres.shape, -1)
        return video.reshape(shape), audio.reshape(shape)

    @staticmethod
    def _augment(mouths: torch.Tensor, sounds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mirror half of the (N, 5, C, h, w) lower faces; blank a random quarter of the bands of
        every (N, steps, D) audio sample (with the sample's mean level, so the level stays)."""
        count, bands = len(mouths), sounds.shape[-1]
        mirror = torch.rand(count, device=mouths.device) < 0.5
        mouths = torch.where(mirror[:, None, None, None, None], mouths.flip(-1), mouths)
        width = bands // 4
        start = torch.randint(0, bands - width + 1, (count, 1), device=sounds.device)
        band = torch.arange(bands, device=sounds.device)[None]
        blank = ((band >= start) & (band < start + width))[:, None, :]
        return mouths, torch.where(blank, sounds.mean(dim=(1, 2), keepdim=True), sounds)

    def contrastive_loss(self, video: torch.Tensor, audio: torch.Tensor, centres: torch.Tensor):
        """InfoNCE both ways over every (clip, centre) pair of the batch; (loss, accuracy)."""
        batch, count = centres.shape
        video, audio = video.reshape(batch * count, -1), audio.reshape(batch * count, -1)
        logits = video @ audio.T / self.hparams.temperature
        clip = torch.arange(batch, device=centres.device).repeat_interleave(count)
        time = centres.reshape(-1)
        gap = (time[:, None] - time[None]).abs()
        near = (clip[:, None] == clip[None]) & (gap > 0) & (gap <= self.hparams.near_frames)
        logits = logits.masked_fill(near, float("-inf"))
        target = torch.arange(batch * count, device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return loss, accuracy

    # ---- steps
    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        frames = batch["frames"]
        size, length = frames.shape[:2]
        if length < FRAMES:
            raise TalkfaceError(f"the sync expert needs clips of at least {FRAMES} frames, got {length}")
        count = min(self.hparams.centres_per_clip, length - 2 * HALF)
        centres = torch.stack([torch.randperm(length - 2 * HALF, device=frames.device)[:count] for _ in range(size)])
        video, audio = self.embed(frames, batch["audio_windows"], centres + HALF, augment=self.hparams.augment)
        loss, accuracy = self.contrastive_loss(video, audio, centres + HALF)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/accuracy", accuracy, prog_bar=True, batch_size=size)
        return loss

    def _evaluate(self, batch: dict, metrics: MetricCollection, mismatched: MetricCollection | None) -> None:
        frames = batch["frames"]
        size, length = frames.shape[:2]
        centres = centre_frames(length).to(frames.device).expand(size, -1)
        video, audio = self.embed(frames, batch["audio_windows"], centres)
        for metric in metrics.values():
            metric.update(video, audio)
        self.log_dict(metrics, batch_size=size)
        if mismatched is not None and size > 1:  # another clip's audio: the lips no longer match the sound
            for metric in mismatched.values():
                metric.update(video, audio.roll(1, dims=0))
            self.log_dict(mismatched, batch_size=size)

    def validation_step(self, batch: dict, batch_index: int) -> None:
        self._evaluate(batch, self.val_metrics, None)

    def test_step(self, batch: dict, batch_index: int) -> None:
        self._evaluate(batch, self.test_metrics, self.test_mismatched)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        store_data_facts(self, checkpoint)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not self.hparams.lr_decay_epochs:
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.lr_decay_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
