"""Turn a stored prepared item into the tensors a model asks for, with optional augmentation.

Fields a model can request:
- `audio_windows` (T, W, D) float: audio features around every frame
- `landmarks` (T, 68, 2) float: normalised [0, 1] aligned landmarks
- `identity_landmarks` (68, 2) float: the reference face's landmarks (a random frame in training)
- `word` () long: word label (-1: none); `word_mask` (T,) float: frames inside the word
- `audio` (T * 640,) float: the raw 16 kHz audio (W&B videos, SyncNet)
- `phone_windows` (T, CONTEXT, P) float: PocketSphinx phone shares around every frame (4 each side), from
  `audio` (talkface/audio/phones.py); decoded once per sample and process, then cached
- `frames` (T, 3, H, W) uint8: aligned crops (stage 2; JPEG-decoded only when asked for)
- `reference_frame` (3, H, W) uint8 and `reference_landmarks` (68, 2): the identity image
- `id` str
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from talkface.audio.phones import phone_labels, phone_windows, rows_from_labels
from talkface.media.jpeg import decode_jpeg

STAGE_ONE_FIELDS = (
    "id",
    "audio_windows",
    "landmarks",
    "identity_landmarks",
    "word",
    "word_mask",
    "audio",
    "phone_windows",
)
FRAME_FIELDS = ("frames", "reference_frame", "reference_landmarks")
ALL_FIELDS = STAGE_ONE_FIELDS + FRAME_FIELDS


class SampleTransform:
    """Callable given to litdata's StreamingDataset (`transform=`); picklable for loader workers."""

    def __init__(
        self,
        fields: tuple[str, ...],
        steps_per_frame: int,
        window: int,
        train: bool,
        crop_size: int = 128,
        landmark_jitter: float = 0.0,
        audio_jitter: float = 0.0,
        audio_warp: float = 0.0,
        color_jitter: float = 0.0,
        max_shift: int = 0,
        reference: str = "random",
        word_map: tuple[int, ...] | None = None,
    ) -> None:
        unknown = set(fields) - set(ALL_FIELDS)
        if unknown:
            raise ValueError(f"unknown data field(s) {sorted(unknown)}; available: {', '.join(ALL_FIELDS)}")
        self.fields = tuple(fields)
        self.steps_per_frame = steps_per_frame
        self.window = window
        self.train = train
        self.crop_size = crop_size
        # Augmentation only ever happens on the training split.
        self.landmark_jitter = landmark_jitter if train else 0.0
        self.audio_jitter = audio_jitter if train else 0.0
        self.audio_warp = audio_warp if train else 0.0
        self.color_jitter = color_jitter if train else 0.0
        self.max_shift = max_shift if train else 0
        if reference not in ("random", "first"):
            raise ValueError(f"reference must be 'random' or 'first', got {reference!r}")
        self.reference = reference if train else "first"
        # Mixed datasets: this dataset's word index -> index in the merged vocabulary (-1 stays -1).
        self.word_map = tuple(word_map) if word_map is not None else None
        self._phones: dict[str, np.ndarray] = {}  # sample id -> phone step labels (decoding is deterministic)

    def __call__(self, item: dict) -> dict:
        landmarks = torch.from_numpy(np.asarray(item["landmarks_norm"], np.float32))
        num_frames = len(landmarks)
        reference = int(torch.randint(num_frames, ())) if self.reference == "random" else 0
        shift = self._shift(item)
        if shift is not None:
            landmarks = landmarks + shift / float(self.crop_size)
        if self.landmark_jitter:
            landmarks = landmarks + torch.randn(num_frames, 1, 2) * self.landmark_jitter  # small head motion

        sample: dict = {}
        for name in self.fields:
            if name == "id":
                sample["id"] = item["id"]
            elif name == "audio_windows":
                # Each window is a run of consecutive feature rows: gather them with one index.
                rows = np.arange(num_frames)[:, None] * self.steps_per_frame + np.arange(self.window)
                features = np.asarray(item["features"], np.float32)
                if self.audio_warp:
                    features = self._warp_bands(features)
                if self.audio_jitter:
                    features = features + self._audio_offset(features.shape[1])
                sample[name] = torch.from_numpy(features[rows])
            elif name == "landmarks":
                sample[name] = landmarks
            elif name in ("identity_landmarks", "reference_landmarks"):
                sample[name] = landmarks[reference].clone()
            elif name == "word":
                word = int(item["word"])
                if self.word_map is not None and 0 <= word < len(self.word_map):
                    word = self.word_map[word]
                sample[name] = torch.tensor(word, dtype=torch.long)
            elif name == "word_mask":
                sample[name] = torch.from_numpy(np.asarray(item["word_mask"], np.float32))
            elif name == "audio":
                sample[name] = torch.from_numpy(np.asarray(item["audio"], np.float32) / 32768.0)
            elif name == "phone_windows":
                sample[name] = torch.from_numpy(phone_windows(self._phone_rows(item, num_frames)))
        if "frames" in self.fields or "reference_frame" in self.fields:
            frames = self._frames(item, list(range(num_frames)) if "frames" in self.fields else [reference], shift)
            if "frames" in self.fields:
                sample["frames"] = frames
            if "reference_frame" in self.fields:
                sample["reference_frame"] = frames[reference if "frames" in self.fields else 0].clone()
        return sample

    def _phone_rows(self, item: dict, num_frames: int) -> np.ndarray:
        labels = self._phones.get(item["id"])
        if labels is None:  # cached as uint8 step labels: 116 bytes a sample, not 4.6 kB of rows
            labels = phone_labels(np.asarray(item["audio"], np.float32) / 32768.0, num_frames)
            self._phones[item["id"]] = labels
        return rows_from_labels(labels)

    def _audio_offset(self, bands: int) -> np.ndarray:
        """One clip's microphone: a level and a tilt across the bands, added to log features."""
        level, tilt = (torch.rand(2).numpy() * 2 - 1) * self.audio_jitter
        return (level + 0.5 * tilt * np.linspace(-1, 1, bands)).astype(np.float32)

    def _warp_bands(self, features: np.ndarray) -> np.ndarray:
        """One clip's vocal tract: the band axis stretched by a factor within 1 ± audio_warp.

        A longer or shorter vocal tract moves every formant by about the same factor (vocal tract
        length perturbation), which is most of what tells one speaker's vowels from another's.
        """
        factor = 1.0 + float(torch.rand(()) * 2 - 1) * self.audio_warp
        bands = features.shape[1]
        source = np.clip(np.arange(bands, dtype=np.float32) * factor, 0, bands - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, bands - 1)
        weight = (source - low).astype(np.float32)
        return features[:, low] * (1 - weight) + features[:, high] * weight

    def _shift(self, item: dict) -> torch.Tensor | None:
        if not self.max_shift or "frame_offsets" not in item:
            return None
        return torch.randint(-self.max_shift, self.max_shift + 1, (2,)).float()

    def _frames(self, item: dict, indices: list[int], shift: torch.Tensor | None) -> torch.Tensor:
        data, offsets = item["frames_jpeg"], item["frame_offsets"]
        frames = np.stack([decode_jpeg(data[offsets[i] : offsets[i + 1]]) for i in indices])
        if shift is not None:
            dx, dy = int(shift[0]), int(shift[1])
            matrix = np.float32([[1, 0, dx], [0, 1, dy]])
            size = frames.shape[2], frames.shape[1]
            frames = np.stack([cv2.warpAffine(f, matrix, size, borderMode=cv2.BORDER_REPLICATE) for f in frames])
        tensor = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W) uint8
        if self.color_jitter:
            gain = 1 + (torch.rand(3, 1, 1) * 2 - 1) * self.color_jitter
            bias = (torch.rand(()) * 2 - 1) * self.color_jitter * 64
            tensor = (tensor.float() * gain + bias).clamp(0, 255).to(torch.uint8)
        return tensor
