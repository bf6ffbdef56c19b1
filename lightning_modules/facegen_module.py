"""Stage 2: landmarks + identity image → frames, with a U-Net and a landmark-conditioned discriminator.

Manual optimisation: a discriminator step (when an adversarial term is configured), then a
generator step on the configured loss terms; `toggle_optimizer` keeps each step's gradients to
its own network, which also keeps DDP happy.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics import MetricCollection

from lightning_modules.data_facts import store_data_facts
from losses import LossComposer
from losses.adversarial import Adversarial
from talkface.checks import check_number
from talkface.errors import TalkfaceError
from talkface.metrics import FramePSNR, FrameSSIM, MouthPSNR, MouthSSIM
from talkface.metrics.redetected_distance import RedetectedLandmarkDistance
from talkface.networks.patch_discriminator import PatchDiscriminator
from talkface.networks.pixel_range import to_uint8, to_unit
from talkface.networks.unet_generator import UNetGenerator

DEFAULT_LOSSES = {
    "reconstruction": {"class_path": "adaptive_reconstruction", "init_args": {"weight": 1.0}},
    "adversarial": {"class_path": "adversarial", "init_args": {"weight": 0.01, "mode": "hinge"}},
    "feature_matching": {"class_path": "feature_matching", "init_args": {"weight": 0.1}},
}


class FaceGenModule(L.LightningModule):
    """Stage 2: identity frame + target landmarks → the frame showing them (U-Net + PatchGAN)."""

    # What this module asks the DataModule for (LRWDataModule loads exactly these).
    data_fields = ("id", "frames", "landmarks", "reference_frame", "reference_landmarks", "audio")
    # The loss terms do not see the loaded clips: each training step cuts (target, reference)
    # pairs from them (`_training_pairs`), plus "previous" with `use_previous_frame`.
    pair_fields = ("target", "target_landmarks", "reference", "reference_landmarks")
    # Pairs a term may also read: its own frames' audio windows (B, K, W, D). A term that reads them
    # (sync_expert) makes each clip's K = frames_per_clip targets a run of consecutive frames, in order.
    sequence_fields = ("audio_windows",)
    # What a training step can produce for the loss terms: the generated image and, when a term
    # reads them, the discriminator's logits and features.
    output_fields = ("image", "fake_logits", "fake_features", "real_features")

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 16,
        depth: int = 4,
        residual_blocks: int = 2,
        norm: str = "instance",
        landmark_mode: str = "heatmap",
        landmark_sigma: float = 2.0,
        blend_with_reference: bool = True,
        use_previous_frame: bool = False,
        warp_reference: bool = False,
        warp_sigma: float = 0.1,
        mouth_shade: float = 0.0,
        mouth_shade_height: float = 1.6,
        mouth_from_photo: bool = False,
        mouth_teeth: float = 0.0,
        discriminator_channels: int = 32,
        discriminator_layers: int = 3,
        losses: dict[str, Any] | None = None,
        frames_per_clip: int = 2,
        eval_frame_stride: int = 1,
        lr: float = 2e-4,
        discriminator_lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        redetect_backend: str = "dlib",
        samples_to_keep: int = 2,
    ) -> None:
        """
        Args:
            image_size: side of the square frames in pixels; must equal the prepared crop size
                and be divisible by 2**depth.
            base_channels: generator channels at full resolution, doubled per level (16 suits a
                CPU, 32 a GPU).
            depth: stride-2 levels of the U-Net.
            residual_blocks: residual blocks at the U-Net's bottleneck.
            norm: the generator's normalisation layers: "instance", "batch" or "none".
            landmark_mode: how landmarks condition both networks: "heatmap" (a Gaussian per
                point, one channel per facial part) or "contour" (the parts drawn as lines).
            landmark_sigma: std of the heatmap Gaussians, in pixels of the frame.
            blend_with_reference: the generator also predicts a mask and keeps the reference's
                pixels where the face does not move (ATVGnet's attention).
            use_previous_frame: the generator also sees the previous generated frame (frames are
                then generated one after the other).
            warp_reference: the reference is warped by the landmark motion first and the U-Net
                corrects the warp (the identity comes from the photo's pixels: use this for
                faces the model never saw); the blend then keeps the warped pixels.
            warp_sigma: width of the warp's Gaussian basis functions, in units of the crop side.
            mouth_shade: with warp_reference, at inference only: how far the inside of the open
                mouth is darkened towards black (0 = not at all, 1 = black), so that a mouth that
                opens reads as open; the U-Net alone draws it too light (MODEL_CARD.md).
            mouth_shade_height: the shaded ellipse's height, in inner-lip gaps.
            mouth_from_photo: with warp_reference, at inference only: where the photo's mouth is
                already as open as the target's, keep its own inside (a smile's teeth, warped)
                instead of drawing it; only the newly opened share is drawn (and shaded).
            mouth_teeth: with mouth_shade, what the shade paints: 0 = black; above 0 = upper
                teeth under the upper lip, then a dark cavity: none until the lips part by 0.1 of
                the mouth's inner width, then a band that deepens with the opening, up to this
                many inner-lip gaps (talkface/networks/mouth_inside.py).
            discriminator_channels: discriminator channels in its first layer.
            discriminator_layers: stride-2 layers of the PatchGAN discriminator.
            losses: the generator's objective, {log name: {class_path, init_args}}; an
                `adversarial` term switches the discriminator on, without one it is not
                trained. Every term's fields are checked against this module's.
            frames_per_clip: target frames drawn from every clip per training step.
            eval_frame_stride: validation/test generate every n-th frame of each clip (from
                frame 1: frame 0 is the reference).
            lr: generator Adam learning rate.
            discriminator_lr: discriminator Adam learning rate.
            betas: Adam betas of both optimisers.
            redetect_backend: landmark detector ("dlib" or "face_alignment") that the mouth LMD
                metric runs on generated frames.
            samples_to_keep: validation clips kept (from the first batch) for the W&B video callback.
        """
        super().__init__()
        check_number("model.init_args.lr", lr, above=0)
        check_number("model.init_args.discriminator_lr", discriminator_lr, above=0)
        check_number("model.init_args.mouth_shade", mouth_shade, 0)
        if mouth_shade > 1:
            raise TalkfaceError(f"model.init_args.mouth_shade must be at most 1 (black), got {mouth_shade!r}")
        check_number("model.init_args.mouth_shade_height", mouth_shade_height, above=0)
        check_number("model.init_args.mouth_teeth", mouth_teeth, 0)
        if mouth_teeth > 1:
            raise TalkfaceError(f"model.init_args.mouth_teeth must be at most 1 (the whole gap), got {mouth_teeth!r}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = UNetGenerator(
            image_size=image_size,
            base_channels=base_channels,
            depth=depth,
            norm=norm,
            residual_blocks=residual_blocks,
            blend_with_reference=blend_with_reference,
            use_previous_frame=use_previous_frame,
            landmark_mode=landmark_mode,
            landmark_sigma=landmark_sigma,
            warp_reference=warp_reference,
            warp_sigma=warp_sigma,
            mouth_shade=mouth_shade,
            mouth_shade_height=mouth_shade_height,
            mouth_from_photo=mouth_from_photo,
            mouth_teeth=mouth_teeth,
        )
        self.discriminator = PatchDiscriminator(
            image_size=image_size,
            base_channels=discriminator_channels,
            n_layers=discriminator_layers,
            landmark_mode=landmark_mode,
            landmark_sigma=landmark_sigma,
        )
        self.losses = LossComposer(DEFAULT_LOSSES if losses is None else losses)
        pairs = self.pair_fields + (("previous",) if use_previous_frame else ()) + self.sequence_fields
        self.losses.check_contract(
            type(self).__name__, pairs, self.output_fields, ("give its loss terms", "gives them")
        )
        self.losses.attach(self)
        self.consecutive = bool(self.losses.batch_fields & set(self.sequence_fields))
        if self.consecutive:
            self.data_fields = type(self).data_fields + ("audio_windows",)
        self.val_metrics = self._metrics("val/")
        self.test_metrics = self._metrics("test/")
        self.baseline_metrics = self._metrics("test/copy_reference/")
        self.validation_samples: dict = {}

    def _metrics(self, prefix: str) -> MetricCollection:
        return MetricCollection(
            {
                "psnr": FramePSNR(),
                "ssim": FrameSSIM(),
                "mouth_psnr": MouthPSNR(),
                "mouth_ssim": MouthSSIM(),
                "lmd_mouth": RedetectedLandmarkDistance("mouth", backend=self.hparams.redetect_backend),
            },
            prefix=prefix,
        )

    @property
    def adversarial_term(self) -> Adversarial | None:
        terms = [t for t in self.losses.terms.values() if isinstance(t, Adversarial)]
        return terms[0] if terms else None

    # ---- generation
    def forward(
        self,
        reference: torch.Tensor,
        reference_landmarks: torch.Tensor,
        target_landmarks: torch.Tensor,
        previous: torch.Tensor | None = None,
        mouth_from_photo: bool | None = None,
        mouth_teeth: float | None = None,
    ) -> torch.Tensor:
        """Frames in [-1, 1] (B, 3, S, S) for target landmarks (B, 68, 2), from a reference in [-1, 1].
        `mouth_from_photo` and `mouth_teeth` override the generator's settings for this call (None:
        keep them)."""
        if not self.hparams.use_previous_frame:
            previous = None
        return self.generator.generate(
            reference, target_landmarks, reference_landmarks, previous, mouth_from_photo, mouth_teeth
        ).image

    @torch.no_grad()
    def render_sequence(
        self,
        reference: torch.Tensor,
        reference_landmarks: torch.Tensor,
        landmarks: torch.Tensor,
        previous: torch.Tensor | None = None,
        mouth_from_photo: bool | None = None,
        mouth_teeth: float | None = None,
    ) -> torch.Tensor:
        """(T, 3, S, S) frames in [-1, 1] for one clip's (T, 68, 2) landmarks from one reference (3, S, S)."""
        if not self.hparams.use_previous_frame:
            count = len(landmarks)
            return self(
                reference[None].expand(count, -1, -1, -1),
                reference_landmarks[None].expand(count, -1, -1),
                landmarks,
                mouth_from_photo=mouth_from_photo,
                mouth_teeth=mouth_teeth,
            )
        frames = []
        for target in landmarks:
            previous = self(
                reference[None], reference_landmarks[None], target[None], previous, mouth_from_photo, mouth_teeth
            )
            frames.append(previous[0])
        return torch.stack(frames)

    # ---- training
    def _training_pairs(self, batch: dict) -> dict[str, torch.Tensor]:
        frames, landmarks = batch["frames"], batch["landmarks"]  # (B, T, 3, S, S) uint8, (B, T, 68, 2)
        clips, count = frames.shape[:2]
        if self.consecutive:  # one run of consecutive frames per clip, for a term that reads their sound
            run = min(self.hparams.frames_per_clip, count)
            starts = torch.randint(0, count - run + 1, (clips, 1), device=frames.device)
            picks = starts + torch.arange(run, device=frames.device)
        else:
            picks = torch.stack(
                [torch.randperm(count, device=frames.device)[: self.hparams.frames_per_clip] for _ in range(clips)]
            )
        rows = torch.arange(clips, device=frames.device)[:, None].expand_as(picks)
        pairs = {
            "target": to_unit(frames[rows, picks].flatten(0, 1)),
            "target_landmarks": landmarks[rows, picks].flatten(0, 1),
            "reference": to_unit(batch["reference_frame"]).repeat_interleave(picks.shape[1], 0),
            "reference_landmarks": batch["reference_landmarks"].repeat_interleave(picks.shape[1], 0),
        }
        if self.hparams.use_previous_frame:
            previous = (picks - 1).clamp_min(0)
            pairs["previous"] = to_unit(frames[rows, previous].flatten(0, 1))
        if self.consecutive:
            pairs["audio_windows"] = batch["audio_windows"][rows, picks]  # (B, K, W, D)
        return pairs

    def training_step(self, batch: dict, batch_index: int) -> None:
        optimizer_g, optimizer_d = self.optimizers()
        pairs = self._training_pairs(batch)
        fake = self(pairs["reference"], pairs["reference_landmarks"], pairs["target_landmarks"], pairs.get("previous"))
        size = len(fake)
        adversarial = self.adversarial_term

        if adversarial is not None and adversarial.active(self.global_step):
            self.toggle_optimizer(optimizer_d)
            real_logits, _ = self.discriminator(pairs["target"], pairs["target_landmarks"])
            fake_logits, _ = self.discriminator(fake.detach(), pairs["target_landmarks"])
            loss_d = adversarial.discriminator_loss(real_logits, fake_logits)
            optimizer_d.zero_grad()
            self.manual_backward(loss_d)
            optimizer_d.step()
            self.untoggle_optimizer(optimizer_d)
            self.log("train/loss_discriminator", loss_d, batch_size=size)

        self.toggle_optimizer(optimizer_g)
        outputs = {"image": fake}
        needs = self.losses.output_fields
        if needs & {"fake_logits", "fake_features", "real_features"}:
            outputs["fake_logits"], outputs["fake_features"] = self.discriminator(fake, pairs["target_landmarks"])
            if "real_features" in needs:
                with torch.no_grad():
                    outputs["real_features"] = self.discriminator(pairs["target"], pairs["target_landmarks"])[1]
        loss_g, terms = self.losses(outputs, pairs, self.global_step)
        optimizer_g.zero_grad()
        self.manual_backward(loss_g)
        optimizer_g.step()
        self.untoggle_optimizer(optimizer_g)
        self.log("train/loss", loss_g, prog_bar=True, batch_size=size)
        for name, value in terms.items():
            self.log(f"train/loss/{name}", value, batch_size=size)

    # ---- evaluation
    def _evaluate(
        self, batch: dict, metrics: MetricCollection, baseline: MetricCollection | None = None
    ) -> torch.Tensor:
        # Frame 0 is the reference itself in evaluation: copying it would score an infinite PSNR.
        stride = self.hparams.eval_frame_stride
        frames, landmarks = batch["frames"][:, 1::stride], batch["landmarks"][:, 1::stride]
        clips, count = frames.shape[:2]
        reference = to_unit(batch["reference_frame"]).repeat_interleave(count, 0)
        reference_landmarks = batch["reference_landmarks"].repeat_interleave(count, 0)
        targets = landmarks.flatten(0, 1)
        if self.hparams.use_previous_frame:
            generated = torch.cat(
                [
                    self.render_sequence(
                        to_unit(batch["reference_frame"][i]), batch["reference_landmarks"][i], landmarks[i]
                    )
                    for i in range(clips)
                ]
            )
        else:
            generated = self(reference, reference_landmarks, targets)
        real = frames.flatten(0, 1).float() / 255.0
        fake = (generated.clamp(-1, 1) + 1) / 2
        self._update(metrics, fake, real, targets)
        if baseline is not None:
            self._update(baseline, (reference + 1) / 2, real, targets)
        return generated.reshape(clips, count, *generated.shape[1:])

    def _update(self, metrics: MetricCollection, fake, real, landmarks) -> None:
        metrics["psnr"].update(fake, real)
        metrics["ssim"].update(fake, real)
        metrics["mouth_psnr"].update(fake, real, landmarks)
        metrics["mouth_ssim"].update(fake, real, landmarks)
        metrics["lmd_mouth"].update(fake, landmarks)
        self.log_dict(metrics, batch_size=len(fake))

    def validation_step(self, batch: dict, batch_index: int) -> None:
        generated = self._evaluate(batch, self.val_metrics)
        if batch_index == 0:  # kept for the W&B callback: outputs this step already made
            keep = self.hparams.samples_to_keep
            stride = self.hparams.eval_frame_stride
            self.validation_samples = {
                "id": list(batch["id"][:keep]),
                "reference": batch["reference_frame"][:keep].cpu(),
                "generated": to_uint8(generated[:keep]).cpu(),
                "target": batch["frames"][:keep].cpu(),  # every frame; generated ones are 1, 1 + stride, ...
                "audio": batch["audio"][:keep].float().cpu(),
                "frame_stride": stride,
            }

    def test_step(self, batch: dict, batch_index: int) -> None:
        self._evaluate(batch, self.test_metrics, self.baseline_metrics)

    def predict_step(self, batch: dict, batch_index: int) -> dict:
        frames = [
            to_uint8(
                self.render_sequence(
                    to_unit(batch["reference_frame"][i]), batch["reference_landmarks"][i], batch["landmarks"][i]
                )
            )
            for i in range(len(batch["landmarks"]))
        ]
        return {"id": batch["id"], "frames": torch.stack(frames)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        store_data_facts(self, checkpoint)

    def configure_optimizers(self):
        betas = tuple(self.hparams.betas)
        generator = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas)
        other = [p for name, p in self.named_parameters() if not name.startswith("generator.")]
        discriminator = torch.optim.Adam(other, lr=self.hparams.discriminator_lr, betas=betas)
        return generator, discriminator
