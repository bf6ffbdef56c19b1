"""Log validation video samples (with the clip's audio muxed in) to W&B, from rank 0 only.

The videos are made from what `validation_step` already kept in `pl_module.validation_samples`,
so logging costs no extra forward pass and no collective (a collective on one rank would hang
DDP). Stage 1: predicted | true landmark animation. Stage 2: reference | generated | true.
Each mp4 is also written under the run's folder, so it is there without W&B as well.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from talkface import FPS, SAMPLE_RATE
from talkface.faces import render_contours
from talkface.media import Mp4Writer


class VideoSamples(L.Callback):
    """Writes validation samples as mp4 with the clip's audio, and logs them to W&B."""

    def __init__(self, every_n_val_epochs: int = 1, max_videos: int = 2, landmark_size: int = 256) -> None:
        """
        Args:
            every_n_val_epochs: write videos at every n-th validation (not training epoch).
            max_videos: clips per validation, from those the module kept (its `samples_to_keep`).
            landmark_size: side in pixels of each landmark drawing (stage 1 videos).
        """
        super().__init__()
        self.every_n_val_epochs = every_n_val_epochs
        self.max_videos = max_videos
        self.landmark_size = landmark_size
        self._validations = 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validations += 1
        samples = getattr(pl_module, "validation_samples", None)
        if not trainer.is_global_zero or not samples or (self._validations - 1) % self.every_n_val_epochs:
            return
        # Not `trainer.log_dir`: under DDP it broadcasts, and a collective on rank 0 alone hangs.
        logger_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
        folder = Path(logger_dir or trainer.default_root_dir) / "videos"
        paths = []
        for index, clip_id in enumerate(samples["id"][: self.max_videos]):
            frames = self._frames(samples, index)
            audio = samples["audio"][index].numpy()
            name = f"step{trainer.global_step:07d}_{index}.mp4"
            paths.append((clip_id, write_clip(folder / name, frames, audio)))
        self._log(trainer, paths)

    def _frames(self, samples: dict, index: int) -> np.ndarray:
        if "predicted" in samples:  # stage 1: landmark animations side by side
            size = self.landmark_size
            predicted = samples["predicted"][index].numpy() * size
            target = samples["target"][index].numpy() * size
            return np.stack(
                [
                    np.concatenate(
                        [render_contours(p, size, thickness=2), render_contours(t, size, thickness=2)], axis=1
                    )
                    for p, t in zip(predicted, target, strict=True)
                ]
            )
        stride = int(samples.get("frame_stride", 1))
        target = samples["target"][index]  # (T, 3, S, S) uint8, every frame of the clip
        reference = samples["reference"][index]
        generated = samples["generated"][index]  # frames 1, 1 + stride, ... (frame 0 is the reference)
        # Hold each generated frame until the next one, so the video keeps the clip's length and sync.
        picks = [min((t - 1) // stride, len(generated) - 1) for t in range(1, len(target))]
        shown = torch.cat([reference[None], generated[picks]])
        row = torch.cat([reference[None].expand_as(shown), shown, target], dim=-1)
        return row.permute(0, 2, 3, 1).numpy()

    def _log(self, trainer: L.Trainer, paths: list[tuple[str, Path]]) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log(
                    {
                        "val/samples": [
                            wandb.Video(str(path), format="mp4", caption=clip_id) for clip_id, path in paths
                        ],
                        "trainer/global_step": trainer.global_step,
                    }
                )


def write_clip(path: Path, frames: np.ndarray, audio: np.ndarray) -> Path:
    """An H.264 + AAC mp4 of `frames` with `audio` cut or padded to the video's length."""
    height, width = frames.shape[1:3]
    length = len(frames) * SAMPLE_RATE // FPS
    audio = np.pad(audio[:length], (0, max(0, length - len(audio))))
    with Mp4Writer(path, width - width % 2, height - height % 2) as writer:
        writer.write_frames(frames[:, : height - height % 2, : width - width % 2])
        writer.write_audio(audio)
    return path
