"""Stage-1 generator: audio feature windows + identity landmarks → a landmark sequence."""

from __future__ import annotations

import torch
from torch import nn

from talkface.audio.phones import PHONES, rows_read
from talkface.networks.audio_encoder import AudioEncoder
from talkface.networks.mouth_rest import MouthRest
from talkface.networks.temporal_model import TemporalModel


class AudioToLandmarks(nn.Module):
    """Predicts per-frame landmark displacements from the identity face (or PCA coefficients of them).

    Predicting displacements keeps the identity's face shape by construction; the network only has
    to say how the face moves.
    """

    def __init__(
        self,
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
        phone_dim: int = 64,
        phone_context: int = 5,
        phone_offset: int = 0,
        mouth_rest: bool = False,
    ) -> None:
        super().__init__()
        if output not in ("displacement", "pca"):
            raise ValueError(f"output must be 'displacement' or 'pca', got {output!r}")
        self.audio_encoder = AudioEncoder(feature_dim, audio_dim)
        # Without the identity input the motion depends on the audio alone: with a few dozen
        # training people, a network that sees the face shape can learn who speaks instead of what.
        self.identity_input = identity_input
        if identity_input:
            self.identity_encoder = nn.Sequential(
                nn.Linear(136, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden)
            )
        # Phone windows (talkface/audio/phones.py) from a speaker-independent recogniser: what is
        # said, in a form that does not depend on whose voice says it.
        # It reads `phone_context` frames of each window, moved `phone_offset` later (data and
        # streams give CONTEXT frames around each frame).
        self.phone_input = phone_input
        self.phone_context = phone_context
        self.phone_offset = phone_offset
        if phone_input:
            self.phone_encoder = nn.Sequential(nn.Linear(phone_context * len(PHONES), phone_dim), nn.ReLU(inplace=True))
        width = audio_dim + (hidden if identity_input else 0) + (phone_dim if phone_input else 0)
        self.temporal = TemporalModel(width, hidden, layers, temporal, dropout)
        self.output = output
        out_dim = pca_components if output == "pca" else 136
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        nn.init.zeros_(self.decoder[-1].weight)  # start from "hold the identity still"
        nn.init.zeros_(self.decoder[-1].bias)
        # The mouth's resting shape on a new face (talkface/networks/mouth_rest.py): fitted after
        # training, all zero (no change) until then.
        self.mouth_rest = MouthRest() if mouth_rest else None
        # PCA basis of landmark displacements (filled from the dataset's metadata when used).
        self.register_buffer("pca_components", torch.zeros(pca_components, 136))

    def forward(
        self, audio_windows: torch.Tensor, identity_landmarks: torch.Tensor, phone_windows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        audio, inputs = self.temporal_inputs(audio_windows, identity_landmarks, phone_windows)
        return {"landmarks": self.decode(self.temporal(inputs), identity_landmarks), "audio_embedding": audio}

    def temporal_inputs(
        self, audio_windows: torch.Tensor, identity_landmarks: torch.Tensor, phone_windows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The audio embedding (B, T, A) and the temporal model's per-frame input (B, T, A [+ H] [+ phones])."""
        frames = audio_windows.shape[1]
        audio = self.audio_encoder(audio_windows)
        parts = [audio]
        if self.identity_input:
            identity = self.identity_encoder((identity_landmarks - 0.5).flatten(1))  # (B, H)
            parts.append(identity[:, None].expand(-1, frames, -1))
        if self.phone_input:
            if phone_windows is None:
                raise ValueError("this model reads phone windows (phone_input=True); none were given")
            phones = rows_read(phone_windows, self.phone_context, self.phone_offset)
            parts.append(self.phone_encoder(phones.flatten(2).to(audio.dtype)))
        return audio, torch.cat(parts, dim=-1) if len(parts) > 1 else audio

    def decode(self, hidden: torch.Tensor, identity_landmarks: torch.Tensor) -> torch.Tensor:
        """(B, T, hidden) temporal features → (B, T, 68, 2) landmarks around the identity."""
        batch, frames = hidden.shape[:2]
        out = self.decoder(hidden)
        displacement = out @ self.pca_components if self.output == "pca" else out
        landmarks = identity_landmarks[:, None] + displacement.reshape(batch, frames, 68, 2) * 0.1
        if self.mouth_rest is not None:
            landmarks = landmarks + self.mouth_rest(identity_landmarks)[:, None]
        return landmarks
