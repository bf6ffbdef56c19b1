"""The official SyncNet (v2) architecture, to load the published `syncnet_v2.model` weights.

Layer for layer the network of joonson/syncnet_python (SyncNetModel.py, Chung & Zisserman 2016),
so the published state dict loads with its own key names (`netcnnaud.*`, `netfcaud.*`,
`netcnnlip.*`, `netfclip.*`). Its inputs, as that repository's evaluation feeds them:

- video: (N, 3, 5, 224, 224) float, 5 consecutive frames of the face crop, BGR, 0–255;
- audio: (N, 1, 13, 20) float, 13 MFCCs (python_speech_features defaults at 16 kHz) over the
  same 0.2 s (20 rows of 10 ms).

`mfcc` below computes those features the same way (pre-emphasis 0.97, 25 ms Hamming-free frames
every 10 ms, 512-point FFT, 26 mel filters, log, DCT-II, lifter 22, c0 replaced by the log frame
energy). The weights are not shipped with talkface; the user gives the file, which is read with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkface.errors import TalkfaceError

EMBEDDING = 1024
IMAGE_SIZE = 224
MFCC_COEFFICIENTS = 13


def _conv2d(inputs: int, outputs: int, kernel, padding, pool=None) -> list[nn.Module]:
    layers = [nn.Conv2d(inputs, outputs, kernel_size=kernel, padding=padding), nn.BatchNorm2d(outputs), nn.ReLU()]
    return layers + ([pool] if pool is not None else [])


def _conv3d(inputs: int, outputs: int, kernel, stride=1, padding=0, pool=None) -> list[nn.Module]:
    layers = [
        nn.Conv3d(inputs, outputs, kernel_size=kernel, stride=stride, padding=padding),
        nn.BatchNorm3d(outputs),
        nn.ReLU(),
    ]
    return layers + ([pool] if pool is not None else [])


def _head(embedding: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embedding))


class SyncNetV2(nn.Module):
    """SyncNet as published (`S` in SyncNetModel.py); the Sequential indices match its state dict."""

    def __init__(self, embedding: int = EMBEDDING) -> None:
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv2d(1, 64, 3, 1, nn.MaxPool2d(kernel_size=1, stride=1)),
            *_conv2d(64, 192, 3, 1, nn.MaxPool2d(kernel_size=3, stride=(1, 2))),
            *_conv2d(192, 384, 3, 1),
            *_conv2d(384, 256, 3, 1),
            *_conv2d(256, 256, 3, 1, nn.MaxPool2d(kernel_size=3, stride=2)),
            *_conv2d(256, 512, (5, 4), 0),
        )
        self.netfcaud = _head(embedding)
        self.netfclip = _head(embedding)
        self.netcnnlip = nn.Sequential(
            *_conv3d(3, 96, (5, 7, 7), (1, 2, 2), 0, nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2))),
            *_conv3d(
                96,
                256,
                (1, 5, 5),
                (1, 2, 2),
                (0, 1, 1),
                nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            ),
            *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), 1, (0, 1, 1), nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2))),
            *_conv3d(256, 512, (1, 6, 6), 1, 0),
        )

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCCs → (N, 1024)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR 0–255 → (N, 1024)."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet_v2(path: str | Path, label: str | None = None) -> SyncNetV2:
    """The official network with the weights of `path` (syncnet_v2.model), in eval mode; one
    TalkfaceError line when the file is missing, unsafe or not those weights."""
    from talkface.generation.checkpoints import safe_torch_load

    path = Path(path)
    label = label or str(path)
    if not path.is_file():
        raise TalkfaceError(f"{label}: no such file (the official SyncNet weights, syncnet_v2.model)")
    state = safe_torch_load(path, label)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TalkfaceError(f"{label}: not a state dict of tensors (expected the official syncnet_v2.model)")
    network = SyncNetV2()
    expected = network.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = f"missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
        raise TalkfaceError(f"{label}: not the official SyncNet v2 weights ({detail})")
    network.load_state_dict(state)
    return network.eval()


def _mel_filterbank(filters: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """python_speech_features.get_filterbanks: triangles on FFT bins, equally spaced in mel."""
    mel = np.linspace(0, 2595 * np.log10(1 + (sample_rate / 2) / 700.0), filters + 2)
    bins = np.floor((n_fft + 1) * (700 * (10 ** (mel / 2595.0) - 1)) / sample_rate).astype(int)
    bank = np.zeros((filters, n_fft // 2 + 1))
    for j in range(filters):
        for i in range(bins[j], bins[j + 1]):
            bank[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(bins[j + 1], bins[j + 2]):
            bank[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    return bank


def mfcc(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(rows, 13) MFCCs every 10 ms, as python_speech_features.mfcc(audio, sample_rate) computes
    them for SyncNet (the audio in int16 units, as scipy reads a wav)."""
    signal = np.asarray(audio, np.float64).reshape(-1) * 32768.0
    signal = np.append(signal[0], signal[1:] - 0.97 * signal[:-1])
    length, step, n_fft = round(0.025 * sample_rate), round(0.01 * sample_rate), 512
    count = 1 if len(signal) <= length else 1 + int(np.ceil((len(signal) - length) / step))
    padded = np.concatenate([signal, np.zeros((count - 1) * step + length - len(signal))])
    index = np.arange(length)[None] + step * np.arange(count)[:, None]
    power = np.abs(np.fft.rfft(padded[index], n_fft)) ** 2 / n_fft
    energy = np.where(power.sum(1) == 0, np.finfo(float).eps, power.sum(1))
    bank = power @ _mel_filterbank(26, n_fft, sample_rate).T
    bank = np.where(bank == 0, np.finfo(float).eps, bank)
    n = np.arange(26)
    dct = np.cos(np.pi * np.arange(MFCC_COEFFICIENTS)[:, None] * (2 * n[None] + 1) / 52) * np.sqrt(2 / 26)
    dct[0] /= np.sqrt(2)
    coefficients = np.log(bank) @ dct.T
    lifter = 1 + 11 * np.sin(np.pi * np.arange(MFCC_COEFFICIENTS) / 22)
    coefficients = coefficients * lifter
    coefficients[:, 0] = np.log(energy)
    return coefficients.astype(np.float32)
