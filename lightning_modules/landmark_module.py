"""Stage 1: audio → landmarks, with the word detector and the temporal residual loss.

The objective is whatever the config's `losses` dict names (see `losses/`); the module only
produces the outputs those terms read: predicted landmarks, the audio embedding, and the word
detector's logits on predicted landmarks (detector weights detached, so the semantic gradient
shapes the motion, not the detector), on true landmarks and on the audio.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.func import functional_call
from torchmetrics import MetricCollection

from lightning_modules.data_facts import store_data_facts
from losses import LossComposer
from talkface.audio.phones import check_phone_window
from talkface.checks import check_number
from talkface.errors import TalkfaceError
from talkface.metrics import LandmarkDistance, LandmarkVelocityError, WordAccuracy
from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_ensemble import LandmarkEnsemble
from talkface.networks.mouth_rest import RidgeStatistics
from talkface.networks.word_detector import WordDetector

DEFAULT_LOSSES = {
    "reconstruction": {"class_path": "landmark_reconstruction", "init_args": {"weight": 1.0}},
    "temporal": {"class_path": "temporal_residual", "init_args": {"weight": 1.0}},
    "semantic": {"class_path": "word_semantic", "init_args": {"weight": 0.01}},
    "detector": {"class_path": "word_detector", "init_args": {"weight": 0.01}},
}


class LandmarkModule(L.LightningModule):
    """Stage 1: audio features + identity landmarks → 68 landmarks for every video frame."""

    # What this module asks the DataModule for (LRWDataModule loads exactly these).
    data_fields = ("id", "audio_windows", "landmarks", "identity_landmarks", "word", "word_mask", "audio")
    # What `run` can produce for the loss terms: the generator's outputs and the word detector's logits.
    output_fields = ("landmarks", "audio_embedding", "word_logits_predicted", "word_logits_true", "word_logits_audio")

    def __init__(
        self,
        num_words: int = 500,
        feature_dim: int = 80,
        audio_dim: int = 256,
        hidden: int = 256,
        layers: int = 3,
        temporal: str = "lstm",
        output: str = "displacement",
        pca_components: int = 20,
        dropout: float = 0.0,
        identity_input: bool = True,
        phone_input: bool = False,
        phone_context: int = 5,
        phone_offset: int = 0,
        mouth_rest_ridge: float = 0.0,
        members: int = 1,
        detector_hidden: int = 128,
        detector: str = "joint",
        detector_checkpoint: str | None = None,
        losses: dict[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_decay_epochs: int = 0,
        samples_to_keep: int = 4,
    ) -> None:
        """
        Args:
            num_words: classes of the word detector (500 on LRW); the CLI links it from the
                prepared data's vocabulary, so configs need not set it.
            feature_dim: audio feature values per step (80 log-mel bins, or 12 MFCC); must match
                the features the data was prepared with.
            audio_dim: width of the per-frame audio embedding.
            hidden: width of the identity encoder, the temporal model and the decoder.
            layers: depth of the temporal model.
            temporal: the temporal model over frames: "lstm", "conv" (dilated 1-D convolutions)
                or "transformer".
            output: what the decoder predicts per frame: "displacement" (all 136 landmark
                offsets from the identity face) or "pca" (`pca_components` coefficients of a
                landmark-displacement basis).
            pca_components: size of that basis (only with output "pca").
            dropout: dropout probability inside the temporal model.
            identity_input: whether the temporal model sees the identity's landmarks; without them
                the predicted motion (still added to the identity's face) depends on the audio
                alone, which transfers better to people the model never saw.
            phone_input: whether the temporal model also reads PocketSphinx phone windows
                (talkface/audio/phones.py), decoded from the audio by a recogniser trained on far
                more voices than any talking-face corpus.
            phone_context: how many frames of phones around each frame it reads (odd, at most
                `talkface.audio.phones.CONTEXT`).
            phone_offset: that window moved this many frames later (0: centred on the frame). The
                LSTM runs forwards and has seen the earlier rows already; 2 (frames t .. t + 4)
                is what `landmark/real` uses (MODEL_CARD.md).
            mouth_rest_ridge: above 0, after the last training epoch stage 1 fits a linear map from
                the photo's face shape to the resting mouth shape its predictions miss, on the
                training windows of `data.data_dir` with this ridge penalty (in normalised
                landmark units), and adds it to every prediction (talkface/networks/mouth_rest.py).
                0 leaves it out.
            members: 1 (train one network), or the number of separately trained stage-1 runs that
                `talkface export A.ckpt B.ckpt ... --out` combined into one model whose prediction
                is their mean (talkface/networks/landmark_ensemble.py); such a model is not trained
                further.
            detector_hidden: width of the word detector (a classifier over landmark sequences).
            detector: "joint" (trained here on true landmarks) or "frozen" (loaded from
                `detector_checkpoint` and kept fixed).
            detector_checkpoint: a stage-1 checkpoint whose trained word detector is used with
                detector "frozen".
            losses: the objective, {log name: {class_path: registered name or module.Class,
                init_args: {...}}}; default: reconstruction, temporal residual, semantic and
                detector terms. Every term's fields are checked against this module's.
            lr: Adam learning rate.
            weight_decay: Adam's L2 penalty on the weights.
            lr_decay_epochs: cosine decay of the learning rate to 0 over this many epochs; 0 keeps
                it constant.
            samples_to_keep: validation clips kept (from the first batch) for the W&B video callback.
        """
        super().__init__()
        check_number("model.init_args.lr", lr, above=0)
        check_number("model.init_args.weight_decay", weight_decay, 0)
        check_number("model.init_args.lr_decay_epochs", lr_decay_epochs, 0, whole=True)
        check_number("model.init_args.mouth_rest_ridge", mouth_rest_ridge, 0)
        self.save_hyperparameters()
        if detector not in ("joint", "frozen"):
            raise TalkfaceError(f"detector must be 'joint' or 'frozen', got {detector!r}")
        check_number("model.init_args.members", members, 1, whole=True)
        check_phone_window(phone_context, phone_offset)
        network = dict(
            feature_dim=feature_dim,
            audio_dim=audio_dim,
            hidden=hidden,
            layers=layers,
            temporal=temporal,
            output=output,
            pca_components=pca_components,
            dropout=dropout,
            identity_input=identity_input,
            phone_input=phone_input,
            phone_context=phone_context,
            phone_offset=phone_offset,
            mouth_rest=mouth_rest_ridge > 0,
        )
        if members == 1:
            self.generator = AudioToLandmarks(**network)
        else:
            self.generator = LandmarkEnsemble([AudioToLandmarks(**network) for _ in range(members)])
        if phone_input:
            self.data_fields = type(self).data_fields + ("phone_windows",)
        self.losses = LossComposer(DEFAULT_LOSSES if losses is None else losses)
        self.losses.check_contract(type(self).__name__, self.data_fields, self.output_fields)
        uses_audio_head = "word_logits_audio" in self.losses.output_fields
        self.word_detector = WordDetector(num_words, detector_hidden, audio_dim=audio_dim if uses_audio_head else None)
        self.losses.attach(self)
        if detector == "frozen":
            self._load_frozen_detector(detector_checkpoint)
        elif not self.losses.output_fields & {"word_logits_true", "word_logits_audio"}:
            # No term trains the detector: keep it fixed (DDP needs every trainable parameter used).
            self.word_detector.requires_grad_(False)
        self.val_metrics = self._metrics("val/")
        self.test_metrics = self._metrics("test/")
        # The trivial baseline, measured on the same clips: the identity landmarks held still.
        self.baseline_metrics = MetricCollection(
            {
                "lmd_mouth": LandmarkDistance("mouth"),
                "lmd_face": LandmarkDistance("face"),
                "velocity_error": LandmarkVelocityError("mouth"),
            },
            prefix="test/still_identity/",
        )
        self.validation_samples: dict[str, torch.Tensor | list] = {}

    def _metrics(self, prefix: str) -> MetricCollection:
        return MetricCollection(
            {
                "lmd_mouth": LandmarkDistance("mouth"),
                "lmd_face": LandmarkDistance("face"),
                "velocity_error": LandmarkVelocityError("mouth"),
                "word_acc_predicted": WordAccuracy(),
                "word_acc_true": WordAccuracy(),
            },
            prefix=prefix,
        )

    def _load_frozen_detector(self, path: str | None) -> None:
        if not path:
            raise TalkfaceError(
                "detector: frozen needs detector_checkpoint (a stage-1 checkpoint with a trained detector)"
            )
        # Imported here: the generation package imports this module. Read safely (weights_only=True, or a
        # .safetensors release); a missing, unreadable or unsafe file is one TalkfaceError line.
        from talkface.generation.checkpoints import read_state_dict

        state = read_state_dict(path, f"detector_checkpoint {path}")
        detector_state = {
            k.removeprefix("word_detector."): v for k, v in state.items() if k.startswith("word_detector.")
        }
        try:
            self.word_detector.load_state_dict(detector_state)
        except RuntimeError as error:
            raise TalkfaceError(
                f"detector_checkpoint {path} does not match this model ({str(error).splitlines()[0]})"
            ) from None
        self.word_detector.requires_grad_(False)

    def setup(self, stage: str) -> None:
        """The DataModule may load other fields than `data_fields` (its `fields` option): the
        loss terms must still find theirs (validation computes the loss too)."""
        if stage == "fit" and self.hparams.members > 1:
            raise TalkfaceError(
                f"this stage 1 is an ensemble of {self.hparams.members} runs (members), combined by `talkface export`: "
                "train each member on its own (members: 1) and combine them again"
            )
        fields = getattr(getattr(self.trainer, "datamodule", None), "fields", None)
        if fields and stage in ("fit", "validate"):
            self.losses.check_contract("the DataModule (data.fields)", fields, self.output_fields)
        if stage == "fit" and self.hparams.output == "pca":
            self._load_pca_basis()

    def _load_pca_basis(self) -> None:
        """`output: pca` predicts coefficients of the training landmarks' principal components,
        which preparation computed (meta.json): copy them into the generator's buffer, which
        checkpoints then carry. A basis already there (a resumed run) is kept."""
        basis = self.generator.pca_components
        if basis.abs().sum() > 0:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        pca = (getattr(datamodule, "meta", None) or {}).get("pca") if datamodule is not None else None
        wanted = basis.shape[0]
        if not pca or len(pca.get("components", [])) < wanted:
            found = len(pca["components"]) if pca else 0
            raise TalkfaceError(
                f"output: pca needs {wanted} principal components of the training landmarks, and the prepared "
                f"data has {found}; lower pca_components or use output: displacement"
            )
        basis.copy_(torch.tensor(pca["components"][:wanted], dtype=basis.dtype))

    def on_train_epoch_end(self) -> None:
        """Fit the mouth rest after the last epoch: this hook runs before the checkpoint callbacks
        save the epoch, so last.ckpt (and every export of it) carries the fitted map."""
        if self.generator.mouth_rest is not None and self._last_epoch():
            windows = self._fit_mouth_rest()
            rank_zero_info(
                f"Fitted the mouth rest (ridge {self.hparams.mouth_rest_ridge:g}) on {windows} training windows"
            )

    def _last_epoch(self) -> bool:
        trainer = self.trainer
        if trainer.should_stop:  # max_time, or another stop
            return True
        max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
        return (max_epochs is not None and 0 <= max_epochs <= trainer.current_epoch + 1) or (
            0 <= max_steps <= trainer.global_step
        )

    @torch.no_grad()
    def _fit_mouth_rest(self) -> int:
        """Predict every training window of `data.data_dir` (in order, unaugmented, the first frame
        as the photo, as at test time) without the correction, and fit it on what they miss. The
        datasets mixed in are left out: one identity with a thousand clips (GRID s1) would weigh
        more than all the other people together in a map meant for new faces. Each DDP
        rank reads its shard; the summed statistics give every rank the same map."""
        mouth_rest = self.generator.mouth_rest
        mouth_rest.reset()
        statistics = RidgeStatistics(self.device)
        was_training = self.training
        self.eval()
        for batch in self.trainer.datamodule.calibration_dataloader():
            batch = self.transfer_batch_to_device(batch, self.device, 0)
            predicted = self(batch["audio_windows"], batch["identity_landmarks"], batch.get("phone_windows"))
            statistics.add(batch["identity_landmarks"], batch["landmarks"], predicted)
        self.train(was_training)
        statistics.reduce(lambda tensor: self.trainer.strategy.reduce(tensor, reduce_op="sum"))
        if statistics.count < 2:
            raise TalkfaceError(
                "mouth_rest_ridge: the training split has fewer than 2 windows to fit the mouth rest on"
            )
        mouth_rest.fit(statistics, self.hparams.mouth_rest_ridge)
        return int(statistics.count)

    # ---- model
    @property
    def reads_phones(self) -> bool:
        """Whether stage 1 needs phone windows next to the audio windows (talkface/audio/phones.py)."""
        return self.generator.phone_input

    def forward(
        self, audio_windows: torch.Tensor, identity_landmarks: torch.Tensor, phone_windows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, W, D) audio windows + (B, 68, 2) identity [+ (B, T, CONTEXT, P) phones] → (B, T, 68, 2) landmarks."""
        return self.generator(audio_windows, identity_landmarks, phone_windows)["landmarks"]

    def run(self, batch: dict, for_metrics: bool = False) -> dict[str, torch.Tensor]:
        """The generator's outputs plus the detector logits that the losses (or metrics) read."""
        outputs = self.generator(batch["audio_windows"], batch["identity_landmarks"], batch.get("phone_windows"))
        wanted = set(self.losses.output_fields)
        if for_metrics:
            wanted |= {"word_logits_predicted", "word_logits_true"}
        if "word_logits_predicted" in wanted:
            detached = {name: value.detach() for name, value in self.word_detector.named_parameters()}
            detached.update(dict(self.word_detector.named_buffers()))
            outputs["word_logits_predicted"] = functional_call(self.word_detector, detached, (outputs["landmarks"],))
        if "word_logits_true" in wanted:
            outputs["word_logits_true"] = self.word_detector(batch["landmarks"])
        if "word_logits_audio" in wanted:
            outputs["word_logits_audio"] = self.word_detector.classify_audio(outputs["audio_embedding"])
        return outputs

    # ---- steps
    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        if self.hparams.detector == "frozen":
            self.word_detector.eval()  # keep its batch-norm statistics fixed too
        outputs = self.run(batch)
        total, terms = self.losses(outputs, batch, self.global_step)
        batch_size = len(batch["landmarks"])
        self.log("train/loss", total, prog_bar=True, batch_size=batch_size)
        for name, value in terms.items():
            self.log(f"train/loss/{name}", value, batch_size=batch_size)
        return total

    def _evaluate(self, batch: dict, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        outputs = self.run(batch, for_metrics=True)
        predicted, target = outputs["landmarks"], batch["landmarks"]
        metrics["lmd_mouth"].update(predicted, target)
        metrics["lmd_face"].update(predicted, target)
        metrics["velocity_error"].update(predicted, target)
        metrics["word_acc_predicted"].update(outputs["word_logits_predicted"], batch["word"])
        metrics["word_acc_true"].update(outputs["word_logits_true"], batch["word"])
        self.log_dict(metrics, batch_size=len(target))
        return outputs

    def validation_step(self, batch: dict, batch_index: int) -> None:
        outputs = self._evaluate(batch, self.val_metrics)
        total, terms = self.losses(outputs, batch, self.global_step)
        self.log("val/loss", total, batch_size=len(batch["landmarks"]), sync_dist=True)
        if batch_index == 0:  # kept for the W&B callback: no extra forward pass, no collective
            keep = self.hparams.samples_to_keep
            self.validation_samples = {
                "id": list(batch["id"][:keep]),
                "predicted": outputs["landmarks"][:keep].detach().float().cpu(),
                "target": batch["landmarks"][:keep].detach().float().cpu(),
                "audio": batch["audio"][:keep].detach().float().cpu(),
            }

    def test_step(self, batch: dict, batch_index: int) -> None:
        self._evaluate(batch, self.test_metrics)
        still = batch["identity_landmarks"][:, None].expand_as(batch["landmarks"])
        for metric in self.baseline_metrics.values():
            metric.update(still, batch["landmarks"])
        self.log_dict(self.baseline_metrics, batch_size=len(still))

    def predict_step(self, batch: dict, batch_index: int) -> dict:
        landmarks = self(batch["audio_windows"], batch["identity_landmarks"], batch.get("phone_windows"))
        return {"id": batch["id"], "landmarks": landmarks}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        store_data_facts(self, checkpoint)

    def configure_optimizers(self):
        parameters = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(parameters, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not self.hparams.lr_decay_epochs:
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.lr_decay_epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
