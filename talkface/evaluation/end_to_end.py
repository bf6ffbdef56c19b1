"""Both stages chained on a test clip, scored like stage 2: what a user of `talkface generate` gets.

Stage 2's own test drives the generator with the *true* landmarks, so it cannot show what a
stage-1 model (or an ablation of it) costs in the final frames. Here stage 1 predicts the
landmarks from the clip's audio and first-frame landmarks, the generator draws the frames from
them and the first frame, and the frames are scored against the real ones on the same frames
(every `frame_stride`-th from frame 1) with stage 2's own metrics: the mouth box comes from the
true landmarks and the re-detected mouth is compared with the true mouth, so lip errors of
either stage count.

The real-face metrics (issue 13) are scored on the same frames:

- `mouth_open_corr` (MouthOpeningCorrelation): the mouth opening of the landmarks re-detected on
  the generated frames against that of the real frames' landmarks. The real ones are the
  prepared `landmarks` field, detected on the real frames by the same dlib backend during
  `talkface prepare`: "re-detected on the real frames" without detecting them a second time.
  The generated frames are re-detected once and that one detection feeds both this metric and
  the mouth LMD.
- `upper_face_psnr` (UpperFacePSNR) and `sharpness_ratio` (SharpnessRatio): the generated frames
  against the photo (the clip's reference frame) in the boxes of the photo's landmarks.

The same three are also scored for the copy-the-reference baseline (the photo held still), under
`copy_reference/`: its mouth never moves, so each clip whose real mouth moves counts 0 (the
metric's "still generated mouth" rule), and it is the photo itself, so its upper-face PSNR is the
cap and its sharpness ratio exactly 1 — trivially perfect, which the report says.
After the test, `counts` and `baseline_counts` hold the metrics' clip and frame counts.

Given a sync `expert`, the chain also draws *every* frame of each clip (the expert reads 5
consecutive frames) and scores their lip sync under the clip's sound, next to the real video's and
the photo held still (talkface/evaluation/lip_sync.py), logged under `lip_sync/`; `sync_clips`
holds the clips scored. The strided frames of the other metrics are drawn as without it.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor
from torchmetrics import MetricCollection

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.evaluation.lip_sync import REAL_PREFIX, STILL_PREFIX, clip_counts, update_lip_sync
from talkface.metrics import MouthOpeningCorrelation, SharpnessRatio, UpperFacePSNR
from talkface.metrics.face_regions import synced_states
from talkface.metrics.landmark_distance import landmark_distance_sum
from talkface.metrics.lip_sync import lip_sync_metrics
from talkface.metrics.redetected_distance import RedetectedLandmarkDistance, redetect
from talkface.networks.pixel_range import to_uint8, to_unit

BASELINE_PREFIX = "copy_reference"
LIP_SYNC_PREFIX = "lip_sync"
REAL_FACE_METRICS = ("mouth_open_corr", "upper_face_psnr", "sharpness_ratio")


class DetectedLandmarkDistance(RedetectedLandmarkDistance):
    """RedetectedLandmarkDistance fed with landmarks already re-detected by `redetect` (same states,
    same numbers), so one detection per frame serves several metrics."""

    def update(self, detected: Tensor, missed: int, target_landmarks: Tensor) -> None:
        total, count = landmark_distance_sum(
            detected[:, None].to(target_landmarks), target_landmarks[:, None], points=self.points, scale=self.scale
        )
        self.total += total.double()
        self.frames += count.double() if isinstance(count, Tensor) else float(count)
        self.undetected += float(missed)


def real_face_metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {
            "mouth_open_corr": MouthOpeningCorrelation(),
            "upper_face_psnr": UpperFacePSNR(),
            "sharpness_ratio": SharpnessRatio(),
        },
        prefix=prefix,
        compute_groups=False,
    )


def metric_counts(metrics: MetricCollection) -> dict[str, dict[str, int]]:
    """The clip and frame counts behind the real-face metrics (and the re-detection), summed over processes."""
    counts = {
        "mouth_open_corr": metrics["mouth_open_corr"].clip_counts(),
        "upper_face_psnr": synced_states(metrics["upper_face_psnr"], ("frames",)),
        "sharpness_ratio": metrics["sharpness_ratio"].frame_counts(),
    }
    if "lmd_mouth" in metrics:
        counts["lmd_mouth"] = synced_states(metrics["lmd_mouth"], ("frames", "undetected"))
    return counts


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

    def __init__(
        self, landmark_model: LandmarkModule, generator: FaceGenModule, frame_stride: int, expert=None
    ) -> None:
        super().__init__()
        self.landmark_model = landmark_model
        self.generator = generator
        self.frame_stride = frame_stride
        self.expert = expert  # a sync expert (talkface/sync/experts.py), or None: no lip sync scores
        self.sync_clips = 0
        if "phone_windows" in getattr(landmark_model, "data_fields", ()):  # a stage 1 that reads phones
            self.data_fields = self.data_fields + ("phone_windows",)
        if expert is not None:
            self.data_fields = self.data_fields + ("audio",)
            self.sync_network = expert.network  # a child, so the trainer moves it with the models
            prefix = f"test/{LIP_SYNC_PREFIX}/"
            self.sync_metrics = lip_sync_metrics(prefix)
            self.sync_real = lip_sync_metrics(f"{prefix}{REAL_PREFIX}/")
            self.sync_still = lip_sync_metrics(f"{prefix}{STILL_PREFIX}/")
        self.backend = generator.hparams.redetect_backend
        # The very metric definitions stage 2 tests with (same re-detection backend), the mouth LMD
        # fed with the detection the mouth-opening correlation uses too, and the real-face metrics.
        stage2 = generator._metrics("test/")
        real_face = real_face_metrics("test/")
        metrics = {name: stage2[name] for name in ("psnr", "ssim", "mouth_psnr", "mouth_ssim")}
        metrics["lmd_mouth"] = DetectedLandmarkDistance("mouth", backend=self.backend)
        metrics.update({name: real_face[name] for name in REAL_FACE_METRICS})
        self.metrics = MetricCollection(metrics, prefix="test/", compute_groups=False)
        self.baseline_metrics = real_face_metrics(f"test/{BASELINE_PREFIX}/")
        self.counts: dict[str, dict[str, int]] = {}
        self.baseline_counts: dict[str, dict[str, int]] = {}

    def test_step(self, batch: dict, batch_index: int) -> None:
        inputs = [batch["audio_windows"], batch["identity_landmarks"]]
        if "phone_windows" in self.data_fields:  # only a stage 1 that reads phones is given them
            inputs.append(batch["phone_windows"])
        predicted = self.landmark_model(*inputs)  # (B, T, 68, 2)
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
        flat_truth = truth.flatten(0, 1)
        detected, missed = redetect(fake, flat_truth, self.backend)
        detected = detected.to(flat_truth)
        self.metrics["psnr"].update(fake, real)
        self.metrics["ssim"].update(fake, real)
        self.metrics["mouth_psnr"].update(fake, real, flat_truth)
        self.metrics["mouth_ssim"].update(fake, real, flat_truth)
        self.metrics["lmd_mouth"].update(detected, missed, flat_truth)
        photo, photo_landmarks = batch["reference_frame"], batch["reference_landmarks"]
        generated_clips = fake.reshape(clips, count, *fake.shape[1:])
        self._update_real_face(self.metrics, generated_clips, detected, truth, photo, photo_landmarks)
        self.log_dict(self.metrics, batch_size=len(fake))

        # The baseline: the photo held still. Its copies are one image, so one detection per clip.
        still = photo.unsqueeze(1).expand(clips, count, *photo.shape[1:])
        photo_detected, _ = redetect(photo, photo_landmarks, self.backend)
        photo_detected = photo_detected.to(truth).unsqueeze(1).expand(clips, count, *photo_detected.shape[1:])
        self._update_real_face(self.baseline_metrics, still, photo_detected, truth, photo, photo_landmarks)
        self.log_dict(self.baseline_metrics, batch_size=len(fake))
        if self.expert is not None:
            self._score_lip_sync(batch, predicted)

    def _score_lip_sync(self, batch: dict, predicted: Tensor) -> None:
        """Every frame of each clip drawn from the predicted landmarks, the real frames and the photo
        held still, each under the clip's sound, scored by the sync expert."""
        frames, audio, photo = batch["frames"], batch["audio"], batch["reference_frame"]
        clips, length = frames.shape[:2]
        generated = torch.stack(
            [
                to_uint8(
                    self.generator.render_sequence(
                        to_unit(photo[i]), batch["reference_landmarks"][i], predicted[i].to(photo.device)
                    )
                )
                for i in range(clips)
            ]
        )
        still = photo.unsqueeze(1).expand(clips, length, *photo.shape[1:])
        for metrics, video in ((self.sync_metrics, generated), (self.sync_real, frames), (self.sync_still, still)):
            update_lip_sync(metrics, self.expert, video, audio)
            self.log_dict(metrics, batch_size=clips)

    @staticmethod
    def _update_real_face(
        metrics: MetricCollection, frames: Tensor, detected: Tensor, truth: Tensor, photo: Tensor, landmarks: Tensor
    ) -> None:
        """Generated frames (B, T, 3, H, W) and their re-detected landmarks ((B*T, 68, 2) or (B, T, 68, 2))
        against the real clip's landmarks truth (B, T, 68, 2), the photo (B, 3, H, W) and its landmarks."""
        clips, count = truth.shape[:2]
        metrics["mouth_open_corr"].update(detected.reshape(clips, count, *truth.shape[2:]), truth)
        metrics["upper_face_psnr"].update(frames, photo, landmarks)
        metrics["sharpness_ratio"].update(frames, photo, landmarks)

    def on_test_epoch_end(self) -> None:
        self.counts = metric_counts(self.metrics)
        self.baseline_counts = metric_counts(self.baseline_metrics)
        if self.expert is not None:
            self.sync_clips = clip_counts(self.sync_metrics)
