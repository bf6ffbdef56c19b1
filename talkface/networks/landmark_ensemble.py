"""Several stage-1 networks side by side, their mean the prediction (a deep ensemble in one model).

With about 30 training voices each network's errors on a new voice are partly its own, set by its
random starting weights: the mean of a few cancels some of them. Two separately trained networks
averaged raised the end-to-end mouth-opening correlation on the unseen people of speakers/ from
0.385 to 0.408 (MODEL_CARD.md). The members are trained together, each on its own loss, from
different starting weights; the mouth rest is fitted once, on the mean, after training.
"""

from __future__ import annotations

import torch
from torch import nn

from talkface.networks.audio_to_landmarks import AudioToLandmarks
from talkface.networks.mouth_rest import MouthRest


class LandmarkEnsemble(nn.Module):
    """The same interface as AudioToLandmarks (forward, phone_input, mouth_rest), for `members` of them."""

    def __init__(self, members: list[AudioToLandmarks], mouth_rest: bool = False) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        if any(member.mouth_rest is not None for member in members):
            raise ValueError("members carry no mouth rest: the ensemble fits one on their mean")
        self.members = nn.ModuleList(members)
        self.mouth_rest = MouthRest() if mouth_rest else None

    @property
    def phone_input(self) -> bool:
        return self.members[0].phone_input

    def forward(
        self, audio_windows: torch.Tensor, identity_landmarks: torch.Tensor, phone_windows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The members' mean landmarks (+ the mouth rest); the first member's audio embedding."""
        outputs = [member(audio_windows, identity_landmarks, phone_windows) for member in self.members]
        landmarks = torch.stack([o["landmarks"] for o in outputs]).mean(dim=0)
        return {"landmarks": self.rest(landmarks, identity_landmarks), "audio_embedding": outputs[0]["audio_embedding"]}

    def rest(self, landmarks: torch.Tensor, identity_landmarks: torch.Tensor) -> torch.Tensor:
        """(B, T, 68, 2) mean landmarks with the mouth rest added (unchanged without one)."""
        if self.mouth_rest is None:
            return landmarks
        return landmarks + self.mouth_rest(identity_landmarks)[:, None]
