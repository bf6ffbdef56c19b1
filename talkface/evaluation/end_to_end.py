"""Both stages chained on a test clip, scored like stage 2: what a user of `talkface generate` gets.

Stage 2's own test drives the generator with the *true* landmarks, so it cannot show what a
stage-1 model (or an ablation of it) costs in the final frames. Here stage 1 predicts the
landmarks from the clip's audio and first-frame landmarks, the generator draws the frames from
them and the first frame, and the frames are scored against the real ones on the same frames
(every `frame_stride`-th from frame 1) with stage 2's own metrics: the mouth box comes from the
true landmarks and the re-detected mouth is compared with the true mouth, so lip errors of
either stage count.
"""

from __future__ import annotations

import lightning as L
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.networks.pixel_range import to_unit


class EndToEnd(L.LightningModule):
    data_fields = (
        "id",
        "audio_windows",
        "identity_landmarks",
        "landmarks",
        "frames",
        "reference_frame",
        "reference_landmarks",
    )

    def __init__(self, landmark_model: LandmarkModule, generator: FaceGenModule, frame_stride: int) -> None:
        super().__init__()
        self.landmark_model = landmark_model
        self.generator = generator
        self.frame_stride = frame_stride
        # The very metric definitions stage 2 tests with (same re-detection backend).
        self.metrics = generator._metrics("test/")

    def test_step(self, batch: dict, batch_index: int) -> None:
        predicted = self.landmark_model(batch["audio_windows"], batch["identity_landmarks"])  # (B, T, 68, 2)
        stride = self.frame_stride
        frames, truth, drive = batch["frames"][:, 1::stride], batch["landmarks"][:, 1::stride], predicted[:, 1::stride]
        clips, count = frames.shape[:2]
        if self.generator.hparams.use_previous_frame:
            generated = torch.cat(
                [
                    self.generator.render_sequence(
                        to_unit(batch["reference_frame"][i]), batch["reference_landmarks"][i], drive[i]
                    )
                    for i in range(clips)
                ]
            )
        else:
            reference = to_unit(batch["reference_frame"]).repeat_interleave(count, 0)
            reference_landmarks = batch["reference_landmarks"].repeat_interleave(count, 0)
            generated = self.generator(reference, reference_landmarks, drive.flatten(0, 1))
        fake = (generated.clamp(-1, 1) + 1) / 2
        real = frames.flatten(0, 1).float() / 255.0
        truth = truth.flatten(0, 1)
        self.metrics["psnr"].update(fake, real)
        self.metrics["ssim"].update(fake, real)
        self.metrics["mouth_psnr"].update(fake, real, truth)
        self.metrics["mouth_ssim"].update(fake, real, truth)
        self.metrics["lmd_mouth"].update(fake, truth)
        self.log_dict(self.metrics, batch_size=len(fake))
