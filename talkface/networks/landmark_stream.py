"""Run the stage-1 network over a recording of any length, one chunk at a time.

The audio encoder and the decoder work frame by frame, so chunking them changes nothing. The
temporal model is the only part that looks across frames: an LSTM carries its (h, c) state from
chunk to chunk, which gives exactly the one-pass result; convolutional and transformer models get
`stream_context` frames of input on each side of every frame they emit (exact for convolutions,
a sliding window for the transformer), so their output lags the input by that many frames.
An ensemble (talkface/networks/landmark_ensemble.py) streams each member and emits their mean.
"""

from __future__ import annotations

import torch

from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.landmark_ensemble import LandmarkEnsemble


class LandmarkStream:
    """`push(windows)` → landmarks of the frames now final; `finish()` → the rest. Batch of one."""

    def __init__(self, model: AudioToLandmarks | LandmarkEnsemble, identity_landmarks: torch.Tensor) -> None:
        self.model = model
        self.identity = identity_landmarks.reshape(1, 68, 2)
        self._members = None
        if isinstance(model, LandmarkEnsemble):  # every member streams alike, so their frames line up
            self._members = [LandmarkStream(member, identity_landmarks) for member in model.members]
            model = model.members[0]
        self.context = model.temporal.stream_context
        self._state = None  # LSTM (h, c)
        self._inputs: torch.Tensor | None = None  # convolution/transformer: inputs not yet emitted + left context
        self._left = 0  # how many of `_inputs` are left context (already emitted)

    @torch.no_grad()
    def push(self, windows: torch.Tensor, phones: torch.Tensor | None = None) -> torch.Tensor:
        """(T, W, D) audio feature windows [+ (T, CONTEXT, P) phone windows] → (t, 68, 2) landmarks, t <= T."""
        if len(windows) == 0:
            return torch.zeros(0, 68, 2)
        if self._members is not None:
            return self._mean([member.push(windows, phones) for member in self._members])
        _, inputs = self.model.temporal_inputs(windows[None], self.identity, None if phones is None else phones[None])
        if self.context == 0:
            hidden, self._state = self.model.temporal.net(inputs, self._state)
            return self._decode(hidden)
        self._inputs = inputs if self._inputs is None else torch.cat([self._inputs, inputs], dim=1)
        return self._emit(final=False)

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        if self._members is not None:
            return self._mean([member.finish() for member in self._members])
        if self.context == 0 or self._inputs is None:
            return torch.zeros(0, 68, 2)
        return self._emit(final=True)

    def _emit(self, final: bool) -> torch.Tensor:
        total = self._inputs.shape[1]
        stop = total if final else total - self.context  # frames with their full right context here
        if stop <= self._left:
            return torch.zeros(0, 68, 2)
        hidden = self.model.temporal(self._inputs)[:, self._left : stop]
        keep_from = max(stop - self.context, 0)
        self._inputs = self._inputs[:, keep_from:]
        self._left = stop - keep_from
        return self._decode(hidden)

    @staticmethod
    def _mean(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(parts).mean(dim=0)

    def _decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.model.decode(hidden, self.identity)[0]
