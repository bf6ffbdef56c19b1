"""The mouth's resting shape on a face stage 1 never saw: a ridge regression, fitted after training.

Stage 1 adds its predicted motion to the photo's own landmarks, and its identity branch learns the
training people's mouths by heart (mouth LMD 1.95 px on training windows, 2.41 on the unseen
people of speakers/). On a new face most of the mouth error is then the static shape the motion
plays around, not the motion: around each window's true mean mouth shape, the same predicted
motion would score 1.66 px. A linear map from the photo's face shape to what the network's
static mouth shape misses, fitted in closed form with a ridge penalty on the training windows,
transfers to new faces where the network does not: on those unseen people 2.41 -> 2.15 px (from
the mouth's own shape alone: 2.28), the opening's correlation unchanged.

The correction is one offset per clip, known from the photo alone, so streamed generation
applies it from the first frame. Shapes are centred on the mouth's own centre: the correction
changes the mouth's shape, never where the mouth is. The photo's whole face is the input: its
pose and jaw say how the mouth's projected shape will sit while it talks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from talkface.faces.layout import MOUTH as MOUTH_POINTS
from talkface.faces.layout import NUM_POINTS, span

MOUTH = span(MOUTH_POINTS)
VALUES = 2 * len(MOUTH_POINTS)  # the output: 20 mouth points, x and y
FEATURES = 2 * NUM_POINTS  # the input: the photo's 68 points, x and y


def mouth_shape(landmarks: torch.Tensor) -> torch.Tensor:
    """(..., 68, 2) landmarks → (..., 40): the mouth points around the mouth's centre."""
    mouth = landmarks[..., MOUTH, :]
    return (mouth - mouth.mean(dim=-2, keepdim=True)).flatten(-2)


def face_shape(landmarks: torch.Tensor) -> torch.Tensor:
    """(..., 68, 2) landmarks → (..., 136): all points around the face's centre."""
    return (landmarks - landmarks.mean(dim=-2, keepdim=True)).flatten(-2)


class MouthRest(nn.Module):
    """offset = (face_shape(photo) - centre) @ weight + bias, added to the 20 mouth points of every frame.

    All zero until `fit`: a model trained without it, or before it was fitted, is unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("centre", torch.zeros(FEATURES))
        self.register_buffer("weight", torch.zeros(FEATURES, VALUES))
        self.register_buffer("bias", torch.zeros(VALUES))

    def forward(self, identity_landmarks: torch.Tensor) -> torch.Tensor:
        """(B, 68, 2) photo landmarks → (B, 68, 2) offsets, zero outside the mouth."""
        shape = face_shape(identity_landmarks).to(self.weight.dtype)
        offset = ((shape - self.centre) @ self.weight + self.bias).unflatten(-1, (VALUES // 2, 2))
        return nn.functional.pad(offset, (0, 0, MOUTH.start, NUM_POINTS - MOUTH.stop)).to(identity_landmarks.dtype)

    def reset(self) -> None:
        for buffer in (self.centre, self.weight, self.bias):
            buffer.zero_()

    @torch.no_grad()
    def fit(self, statistics: RidgeStatistics, ridge: float) -> None:
        """Set the map from summed statistics (summed over DDP ranks by the caller)."""
        self.centre.copy_(statistics.x_mean())
        self.weight.copy_(statistics.solve(ridge))
        self.bias.copy_(statistics.y_mean())


class RidgeStatistics:
    """Sums that a ridge regression needs, so that shards (DDP ranks, batches) add up exactly."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64, device=device)  # noqa: E731
        self.count = zeros(())
        self.sum_x, self.sum_y = zeros(FEATURES), zeros(VALUES)
        self.sum_xx, self.sum_xy = zeros(FEATURES, FEATURES), zeros(FEATURES, VALUES)

    def add(self, photos: torch.Tensor, truth: torch.Tensor, predicted: torch.Tensor) -> None:
        """photos (B, 68, 2); truth and predicted (B, T, 68, 2): the target is what the predicted
        window-mean mouth shape misses of the true one."""
        x = face_shape(photos).double()
        y = (mouth_shape(truth).mean(dim=1) - mouth_shape(predicted).mean(dim=1)).double()
        self.count += len(x)
        self.sum_x += x.sum(0)
        self.sum_y += y.sum(0)
        self.sum_xx += x.T @ x
        self.sum_xy += x.T @ y

    def tensors(self) -> list[torch.Tensor]:
        return [self.count, self.sum_x, self.sum_y, self.sum_xx, self.sum_xy]

    def reduce(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace every sum by `reduce(sum)`: a DDP sum over ranks gives every rank the whole."""
        self.count, self.sum_x, self.sum_y, self.sum_xx, self.sum_xy = (reduce(t) for t in self.tensors())

    def x_mean(self) -> torch.Tensor:
        return self.sum_x / self.count

    def y_mean(self) -> torch.Tensor:
        return self.sum_y / self.count

    def solve(self, ridge: float) -> torch.Tensor:
        """The (136, 40) weight of the centred regression, ridge-penalised."""
        x_mean, y_mean = self.x_mean(), self.y_mean()
        xx = self.sum_xx - self.count * torch.outer(x_mean, x_mean)
        xy = self.sum_xy - self.count * torch.outer(x_mean, y_mean)
        eye = torch.eye(FEATURES, dtype=xx.dtype, device=xx.device)
        return torch.linalg.solve(xx + ridge * eye, xy)
