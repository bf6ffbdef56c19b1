"""Feature windows for a long recording, computed chunk by chunk with the same numbers as in one go.

`audio_windows` featurises a whole clip: the audio is padded with `context // 2` frames of silence
on each side and the STFT zero-pads half an FFT beyond that. `WindowStream` computes the same
features over a sliding stretch of samples that covers each chunk's windows plus the STFT's reach,
so the result equals the one-pass result while memory stays the size of one chunk.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from talkface.audio.features import LOG_FLOOR, FeatureConfig, _transform


class WindowStream:
    """Feed audio with `push`, get (frames, window, dim) windows for every frame now complete.

    `total_frames` is the length of the video being made (audio beyond it is ignored, audio short
    of it is padded with silence), as `compute_features` does.
    """

    def __init__(self, total_frames: int, config: FeatureConfig | None = None) -> None:
        self.config = config or FeatureConfig()
        self.total_frames = total_frames
        hop = self.config.hop_length
        self._margin = math.ceil(self.config.n_fft / 2 / hop)  # feature frames the STFT reaches
        pad = (self.config.context // 2) * self.config.samples_per_frame
        self._audio_end = pad + total_frames * self.config.samples_per_frame  # in padded samples
        # The buffer holds padded samples from index `_start`; it starts with the leading silence.
        self._start = -self._margin * hop
        self._buffer = np.zeros(pad + self._margin * hop, np.float32)
        self._next_frame = 0

    def push(self, samples: np.ndarray) -> torch.Tensor:
        room = self._audio_end - (self._start + len(self._buffer))
        samples = np.asarray(samples, np.float32).reshape(-1)[: max(room, 0)]
        self._buffer = np.concatenate([self._buffer, samples])
        return self._emit(final=False)

    def finish(self) -> torch.Tensor:
        """The remaining windows (trailing silence added); the stream has then made every frame."""
        return self._emit(final=True)

    def _sample_range(self, first: int, stop: int) -> tuple[int, int]:
        """Padded-sample range whose STFT gives the windows of frames [first, stop)."""
        config, hop = self.config, self.config.hop_length
        begin = (first * config.steps_per_frame - self._margin) * hop
        last_feature = (stop - 1) * config.steps_per_frame + config.window - 1
        return begin, (last_feature + self._margin) * hop + 1

    def _emit(self, final: bool) -> torch.Tensor:
        config = self.config
        if final:
            stop = self.total_frames
            _, end = self._sample_range(self._next_frame, max(stop, self._next_frame + 1))
            missing = end - (self._start + len(self._buffer))
            if missing > 0:
                self._buffer = np.concatenate([self._buffer, np.zeros(missing, np.float32)])
        else:
            available = self._start + len(self._buffer)
            # The last frame whose sample range ends within what has arrived (see _sample_range).
            reach = (available - 1) // config.hop_length - config.window + 1 - self._margin
            stop = min(max(reach // config.steps_per_frame + 1, self._next_frame), self.total_frames)
        if stop <= self._next_frame:
            return torch.zeros(0, config.window, config.dim)
        begin, end = self._sample_range(self._next_frame, stop)
        segment = self._buffer[begin - self._start : end - self._start]
        with torch.no_grad():
            features = _transform(config)(torch.from_numpy(np.ascontiguousarray(segment)))
        if config.kind == "mel":
            features = torch.log(features.clamp_min(LOG_FLOOR))
        elif config.drop_first_mfcc:
            features = features[1:]
        features = features.T[self._margin :]  # feature 0 is now the first frame's first feature
        count = stop - self._next_frame
        windows = features.unfold(0, config.window, config.steps_per_frame)[:count].transpose(1, 2).contiguous()
        self._next_frame = stop
        keep_from = self._sample_range(stop, stop + 1)[0] if stop < self.total_frames else end
        self._buffer = self._buffer[keep_from - self._start :]
        self._start = keep_from
        return windows

    @property
    def done(self) -> bool:
        return self._next_frame >= self.total_frames
