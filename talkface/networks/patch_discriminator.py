"""Stage 2 discriminators: landmark-conditioned PatchGANs, per frame and over short clips.

A PatchGAN judges overlapping patches (each logit sees a ~70 px receptive field at n_layers=3)
rather than the whole image, which pushes the generator towards sharp local texture. The target
landmark images are stacked onto the image, so a realistic frame with the wrong mouth shape is
still fake: the adversarial loss also enforces the landmark condition. Each block's output is
returned too, for a feature-matching loss (pix2pixHD).

The temporal variant sees K consecutive frames through 3D convolutions, so it can also penalise
flicker and motion that does not follow the landmarks from frame to frame.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from talkface.networks.landmark_images import LandmarkRenderer
from talkface.networks.unet_generator import norm_layer


def _check_patch_size(image_size: int, n_layers: int) -> None:
    # n_layers stride-2 convs, then two 4x4 stride-1 convs that each remove one pixel.
    if image_size // 2**n_layers < 3:
        raise ValueError(f"n_layers={n_layers} leaves no patch at {image_size}²: need image_size / 2**n_layers >= 3")


def _patch_blocks(
    in_channels: int, base_channels: int, n_layers: int, max_channels: int, norm: str, spectral_norm: bool, dims: int
) -> nn.ModuleList:
    """pix2pix's NLayerDiscriminator as a list of blocks (so each block's output is a feature).

    dims=2: 4x4 convs; dims=3: (3, 4, 4) convs that keep the number of frames (stride 1, pad 1 in time).
    """
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    kernel = 4 if dims == 2 else (3, 4, 4)
    padding = 1
    down = 2 if dims == 2 else (1, 2, 2)

    def block(c_in: int, c_out: int, stride, with_norm: bool, last: bool = False) -> nn.Sequential:
        # A conv bias before a norm is removed by it (and would never get a gradient).
        layer = conv(c_in, c_out, kernel, stride=stride, padding=padding, bias=last or not with_norm or norm == "none")
        if spectral_norm:
            layer = apply_spectral_norm(layer)
        if last:
            return nn.Sequential(layer)
        parts = [layer]
        if with_norm:
            parts.append(norm_layer(norm, c_out, dims))
        parts.append(nn.LeakyReLU(0.2))
        return nn.Sequential(*parts)

    widths = [min(base_channels * 2**i, max_channels) for i in range(n_layers + 1)]
    blocks = [block(in_channels, widths[0], down, with_norm=False)]  # no norm on the input layer
    blocks += [block(widths[i - 1], widths[i], down, with_norm=True) for i in range(1, n_layers)]
    blocks.append(block(widths[n_layers - 1], widths[n_layers], 1, with_norm=True))
    blocks.append(block(widths[n_layers], 1, 1, with_norm=False, last=True))
    return nn.ModuleList(blocks)


class PatchDiscriminator(nn.Module):
    """Per-frame PatchGAN conditioned on the target landmarks.

    forward(image, landmarks) -> (logits (B, 1, h, w), features [(B, C_i, h_i, w_i), ...])
      image: (B, 3, S, S) in [-1, 1]; landmarks: (B, 68, 2) normalised to [0, 1] of the crop, or
      images already rendered by `self.renderer` (render once, use for G and both D passes).
    At 128² with n_layers=3 the logits are 14x14. Defaults (base 32, n_layers 3, max 256,
    spectral norm + instance norm) have ~0.7 M parameters.
    """

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 32,
        n_layers: int = 3,
        max_channels: int = 256,
        norm: str = "instance",
        spectral_norm: bool = True,
        landmark_mode: str = "heatmap",
        landmark_sigma: float = 2.0,
        landmark_groups: str | list[list[int]] = "parts",
        contour_thickness: float = 1.0,
    ):
        super().__init__()
        _check_patch_size(image_size, n_layers)
        norm_layer(norm, 1)  # validate the name
        self.image_size = image_size
        self.renderer = LandmarkRenderer(
            image_size, landmark_mode, sigma=landmark_sigma, groups=landmark_groups, thickness=contour_thickness
        )
        self.blocks = _patch_blocks(
            3 + self.renderer.channels, base_channels, n_layers, max_channels, norm, spectral_norm, dims=2
        )

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        size = self.image_size
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, size, size):
            raise ValueError(f"image must be (B, 3, {size}, {size}), got {tuple(image.shape)}")
        x = torch.cat([image, self.renderer.as_images(landmarks).to(image.dtype)], dim=1)
        features = []
        for block in self.blocks[:-1]:
            x = block(x)
            features.append(x)
        return self.blocks[-1](x), features


class TemporalPatchDiscriminator(nn.Module):
    """PatchGAN over a clip of K frames (3D convs), conditioned on each frame's landmarks.

    forward(clip, landmarks) -> (logits (B, 1, K, h, w), features [(B, C_i, K, h_i, w_i), ...])
      clip: (B, K, 3, S, S) in [-1, 1]; landmarks: (B, K, 68, 2) normalised, or rendered
      (B, K, C, S, S). Time kernels are 3 wide with padding 1, so any K >= 1 works and each
      logit sees up to 2 * (n_layers + 2) + 1 frames. Defaults have ~2.0 M parameters.
    """

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 32,
        n_layers: int = 3,
        max_channels: int = 256,
        norm: str = "instance",
        spectral_norm: bool = True,
        landmark_mode: str = "heatmap",
        landmark_sigma: float = 2.0,
        landmark_groups: str | list[list[int]] = "parts",
        contour_thickness: float = 1.0,
    ):
        super().__init__()
        _check_patch_size(image_size, n_layers)
        norm_layer(norm, 1)
        self.image_size = image_size
        self.renderer = LandmarkRenderer(
            image_size, landmark_mode, sigma=landmark_sigma, groups=landmark_groups, thickness=contour_thickness
        )
        self.blocks = _patch_blocks(
            3 + self.renderer.channels, base_channels, n_layers, max_channels, norm, spectral_norm, dims=3
        )

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        size = self.image_size
        if clip.ndim != 5 or tuple(clip.shape[2:]) != (3, size, size):
            raise ValueError(f"clip must be (B, K, 3, {size}, {size}), got {tuple(clip.shape)}")
        images = self.renderer.as_images(landmarks).to(clip.dtype)
        if images.shape[:2] != clip.shape[:2]:
            raise ValueError(f"landmarks for {tuple(images.shape[:2])} (B, K) frames, clip has {tuple(clip.shape[:2])}")
        # (B, K, C, S, S) -> (B, C, K, S, S): Conv3d wants channels before time.
        x = torch.cat([clip, images], dim=2).transpose(1, 2)
        features = []
        for block in self.blocks[:-1]:
            x = block(x)
            features.append(x)
        return self.blocks[-1](x), features
