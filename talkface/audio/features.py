"""Log-mel or MFCC features with a window of context around every video frame.

Feature frames are centred on multiples of the hop, so with 16 kHz, hop 160 and 25 fps there are
exactly 4 feature frames inside each video frame's 640 samples. Frame t's window covers video
frames t - context//2 .. t + context//2, so T video frames get T windows, exactly aligned; the
audio is padded with silence so that the first and last frames get full windows too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torchaudio.transforms as AT

from talkface import FPS, SAMPLE_RATE
from talkface.errors import TalkfaceError

LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "mel"  # "mel" (log-mel, Wav2Lip-like) or "mfcc" (ATVGnet-like)
    sample_rate: int = SAMPLE_RATE
    fps: int = FPS
    hop_length: int = 160  # 100 feature frames per second
    win_length: int = 400  # 25 ms
    n_fft: int = 512
    n_mels: int = 80
    n_mfcc: int = 13
    drop_first_mfcc: bool = True  # c0 is loudness, not content (ATVGnet drops it)
    context: int = 7  # video frames per window (odd): 7 → 0.28 s

    def __post_init__(self) -> None:
        if self.kind not in ("mel", "mfcc"):
            raise TalkfaceError(f"audio feature kind must be 'mel' or 'mfcc', got {self.kind!r}")
        if self.context < 1 or self.context % 2 == 0:
            raise TalkfaceError(f"audio context must be a positive odd number of frames, got {self.context}")
        if self.hop_length < 1 or (self.sample_rate // self.fps) % self.hop_length or self.sample_rate % self.fps:
            raise TalkfaceError(
                f"hop_length {self.hop_length} must divide the {self.sample_rate // self.fps} samples "
                f"of one video frame ({self.sample_rate} Hz at {self.fps} fps)"
            )
        if not 1 <= self.win_length <= self.n_fft:
            raise TalkfaceError(f"win_length must be between 1 and n_fft ({self.n_fft}), got {self.win_length}")
        if self.n_mels < 1 or _has_empty_mel_band(self.n_fft, self.sample_rate, self.n_mels):
            most = max_mel_bands(self.n_fft, self.sample_rate)
            raise TalkfaceError(
                f"--n-mels must be between 1 and {most} (more mel bands than that are empty with a "
                f"{self.n_fft}-point FFT at {self.sample_rate} Hz), got {self.n_mels}"
            )
        if self.kind == "mfcc" and self.n_mfcc < 1 + self.drop_first_mfcc:
            raise TalkfaceError(f"n_mfcc must be at least {1 + self.drop_first_mfcc}, got {self.n_mfcc}")
        if self.kind == "mfcc" and self.n_mels < self.n_mfcc:
            raise TalkfaceError(
                f"--n-mels must be at least {self.n_mfcc} (the MFCC count) for mfcc features, got {self.n_mels}"
            )

    @property
    def samples_per_frame(self) -> int:
        return self.sample_rate // self.fps

    @property
    def steps_per_frame(self) -> int:
        """Feature frames inside one video frame."""
        return self.samples_per_frame // self.hop_length

    @property
    def window(self) -> int:
        """Feature frames in one video frame's window."""
        return self.context * self.steps_per_frame

    @property
    def dim(self) -> int:
        if self.kind == "mel":
            return self.n_mels
        return self.n_mfcc - (1 if self.drop_first_mfcc else 0)

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def max_mel_bands(n_fft: int, sample_rate: int) -> int:
    """The most mel bands for which no filter of the bank is empty (114 for 512 points at 16 kHz)."""
    most = 0
    while most < n_fft // 2 + 1 and not _has_empty_mel_band(n_fft, sample_rate, most + 1):
        most += 1
    return most


@lru_cache(maxsize=64)
def _has_empty_mel_band(n_fft: int, sample_rate: int, n_mels: int) -> bool:
    """Whether the mel filter bank MelSpectrogram builds has a filter that covers no FFT bin."""
    import warnings

    import torchaudio.functional as AF

    if n_mels > n_fft // 2 + 1:
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchaudio's warning about an empty filter is what we test
        bank = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2, n_mels, sample_rate)
    return bool((bank.sum(0) == 0).any())


@lru_cache(maxsize=8)
def _transform(config: FeatureConfig) -> torch.nn.Module:
    mel_kwargs = dict(
        n_fft=config.n_fft,
        win_length=config.win_length,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        center=True,
        pad_mode="constant",
    )
    if config.kind == "mel":
        return AT.MelSpectrogram(sample_rate=config.sample_rate, **mel_kwargs)
    return AT.MFCC(sample_rate=config.sample_rate, n_mfcc=config.n_mfcc, log_mels=True, melkwargs=mel_kwargs)


def compute_features(audio: np.ndarray | torch.Tensor, num_frames: int, config: FeatureConfig) -> torch.Tensor:
    """(num_frames * steps + (context - 1) * steps, dim) features, including the context padding.

    The audio is cut or zero-padded to exactly `num_frames` video frames first.
    """
    audio = torch.as_tensor(np.asarray(audio, dtype=np.float32)).reshape(-1)
    length = num_frames * config.samples_per_frame
    audio = audio[:length]
    pad = (config.context // 2) * config.samples_per_frame
    audio = torch.nn.functional.pad(audio, (pad, pad + length - len(audio)))
    with torch.no_grad():
        features = _transform(config)(audio)  # (dim', N + 1)
    if config.kind == "mel":
        features = torch.log(features.clamp_min(LOG_FLOOR))
    elif config.drop_first_mfcc:
        features = features[1:]
    steps = (num_frames + config.context - 1) * config.steps_per_frame
    return features[:, :steps].T.contiguous()


def frame_windows(features: torch.Tensor, num_frames: int, config: FeatureConfig) -> torch.Tensor:
    """(num_frames, window, dim): frame t's window starts at feature t * steps (a strided view)."""
    windows = features.unfold(0, config.window, config.steps_per_frame)  # (T', dim, window)
    return windows[:num_frames].transpose(1, 2)


def audio_windows(
    audio: np.ndarray | torch.Tensor, num_frames: int, config: FeatureConfig | None = None
) -> torch.Tensor:
    """(num_frames, window, dim) features for `num_frames` video frames of `audio`."""
    config = config or FeatureConfig()
    return frame_windows(compute_features(audio, num_frames, config), num_frames, config)
