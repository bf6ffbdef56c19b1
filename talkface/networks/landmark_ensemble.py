"""Several separately trained stage-1 networks, their mean the prediction (a deep ensemble).

With about 30 training voices each run's errors on a new voice are partly its own, set by its
random starting weights, data order and augmentation: the mean of a few cancels some of them.
`talkface export A.ckpt B.ckpt ... --out` combines runs of one recipe (different seeds) into one
release; each member keeps the mouth rest its own run fitted. On the unseen people of speakers/
five seeds of `landmark/real` gained little (MODEL_CARD.md); members trained side by side in one
run, on the same batches, gained nothing: their errors agreed.
"""

from __future__ import annotations

import torch
from torch import nn

from talkface.networks.audio_to_landmarks import AudioToLandmarks


class LandmarkEnsemble(nn.Module):
    """The interface of AudioToLandmarks that prediction uses (forward, phone_input), for `members` of them."""

    def __init__(self, members: list[AudioToLandmarks]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def phone_input(self) -> bool:
        return self.members[0].phone_input

    def forward(
        self, audio_windows: torch.Tensor, identity_landmarks: torch.Tensor, phone_windows: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The members' mean landmarks; the first member's audio embedding."""
        outputs = [member(audio_windows, identity_landmarks, phone_windows) for member in self.members]
        landmarks = torch.stack([o["landmarks"] for o in outputs]).mean(dim=0)
        return {"landmarks": landmarks, "audio_embedding": outputs[0]["audio_embedding"]}
