"""Perceptual loss on VGG-19 features (off in the default configs: it needs ImageNet weights).

The weights come from torchvision's `vgg19-dcbb9e9d.pth` in `$TORCH_HOME/hub/checkpoints`; nothing
is downloaded here, and a missing file is a clear error naming it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from losses.base import LossTerm
from losses.registry import register_loss
from talkface.errors import MissingWeightsError

VGG19_FILE = "vgg19-dcbb9e9d.pth"
LAYERS = (3, 8, 17, 26)  # relu1_2, relu2_2, relu3_4, relu4_4


def vgg_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


@register_loss("perceptual")
class Perceptual(LossTerm):
    """L1 between VGG-19 features (relu1_2 to relu4_4) of the generated and the target frame."""

    batch_fields = ("target",)
    output_fields = ("image",)

    def __init__(self, weight: float = 0.1, weights_path: str | None = None, start_step: int = 0) -> None:
        """
        Args:
            weight: multiplies the term in the total loss.
            weights_path: torchvision's VGG-19 ImageNet weights file; default:
                $TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth (never downloaded).
            start_step: the term joins the total from this global step on.
        """
        super().__init__(weight, start_step)
        from torchvision.models import vgg19

        path = Path(weights_path) if weights_path else vgg_weights_path()
        if not path.is_file():
            raise MissingWeightsError(
                f"perceptual loss needs VGG-19 ImageNet weights: put {VGG19_FILE} in {path.parent} "
                "(or set weights_path), or remove the perceptual term from the config"
            )
        network = vgg19()
        network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.features = network.features[: LAYERS[-1] + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _features(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image + 1) / 2 - self.mean) / self.std
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in LAYERS:
                out.append(x)
        return out

    def compute(self, outputs: dict, batch: dict) -> torch.Tensor:
        fake, real = self._features(outputs["image"]), self._features(batch["target"])
        return sum((f - r.detach()).abs().mean() for f, r in zip(fake, real, strict=True)) / len(LAYERS)

    def train(self, mode: bool = True) -> Perceptual:
        super().train(mode)
        self.features.eval()  # a fixed feature extractor
        return self
