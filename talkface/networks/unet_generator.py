"""Stage 2 generator: identity frame + target landmarks -> the frame with those landmarks.

A U-Net: the input (reference frame, target- and reference-landmark images, optionally the
previous generated frame) goes down `depth` stride-2 levels and back up, each up level joined
with the encoder features of its resolution (skip connections), so fine detail of the reference
reaches the output without passing the bottleneck.

With `blend_with_reference` (ATVGnet's attention), the network also predicts a mask and the
output is `mask * generated + (1 - mask) * reference`: where the face does not move (background,
hair, eyes) the reference pixels pass through unchanged, which keeps the identity sharp, and
capacity goes to the mouth and jaw. ATVGnet's dynamic pixel-wise loss weights errors by this
mask, so `generate()` returns it.

With `warp_reference` the reference is first warped so its landmarks land on the target ones
(talkface.networks.landmark_warp); the U-Net sees the warped frame too, and the blend keeps the
*warped* pixels where the mask is low. The identity then comes from the photo's own pixels, so
the generator works on faces it never saw, and only the mouth's inside has to be drawn: the
blend mask always covers the inner mouth of the target landmarks (`inner_mouth_mask`). At
inference, `mouth_shade` darkens that inside so a mouth that opens is seen to open, and
`mouth_from_photo` keeps the photo's own inside (a smile's teeth, warped) wherever the photo's
mouth is already as open, drawing only the share of the opening that is new.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from talkface.networks.landmark_images import LandmarkRenderer
from talkface.networks.landmark_warp import (
    inner_mouth_mask,
    new_mouth_opening_mask,
    new_opening_share,
    warp_to_landmarks,
)
from talkface.networks.mouth_inside import mouth_inside

NORMS = ("instance", "batch", "none")
MASK_FLOOR = 0.1  # a warping generator's mask below this counts as 0 at inference


def norm_layer(norm: str, channels: int, dims: int = 2) -> nn.Module:
    """InstanceNorm (affine) / BatchNorm / identity for 2D or 3D feature maps."""
    if norm == "instance":
        return (nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if norm == "batch":
        return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d)(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def conv_block(in_channels: int, out_channels: int, norm: str, stride: int = 1, leaky: bool = False) -> nn.Sequential:
    """3x3 conv + norm + ReLU (LeakyReLU 0.2 in the encoder, as pix2pix). No conv bias before a
    norm: the norm removes it anyway, and a parameter that never gets a gradient is dead weight."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm == "none"),
        norm_layer(norm, out_channels),
        nn.LeakyReLU(0.2) if leaky else nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut, for the bottleneck: more depth where it is cheap."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            conv_block(channels, channels, norm),
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm == "none"),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GeneratorOutput(NamedTuple):
    image: torch.Tensor  # (B, 3, S, S) in [-1, 1]: the frame to use
    generated: torch.Tensor  # (B, 3, S, S) in [-1, 1]: the network's own pixels, before blending
    mask: torch.Tensor | None  # (B, 1, S, S) in [0, 1]: weight of `generated`; None without blending
    field: torch.Tensor | None = None  # (B, 2, S, S): the reference's backward warp ([0, 1] units); None without


class UNetGenerator(nn.Module):
    """U-Net frame generator conditioned on landmarks.

    forward(reference, target_landmarks, reference_landmarks, previous=None) -> (B, 3, S, S) in [-1, 1]
      reference: (B, 3, S, S) identity frame in [-1, 1];
      target_landmarks, reference_landmarks: (B, 68, 2) normalised to [0, 1] of the crop (or
        images already rendered by `self.renderer`);
      previous: (B, 3, S, S) the previous generated frame, only with `use_previous_frame`; None
        there means the first frame of a sequence, and the reference stands in for it.
    generate(...) takes the same arguments and also returns the raw output and the blend mask.

    Channels per level are base_channels * 2**level, capped at max_channels; image_size must be
    divisible by 2**depth. The defaults (128², base 16, depth 4, 2 residual blocks, 6 heatmap
    channels) have 4.3 M parameters and cost ~1.0 GMAC per frame (4.1 at 256²): small enough to
    train on a CPU; base_channels=32 (7.3 M parameters, 3.3 GMAC per frame) suits GPUs.
    """

    def __init__(
        self,
        image_size: int = 128,
        base_channels: int = 16,
        depth: int = 4,
        max_channels: int = 256,
        norm: str = "instance",
        residual_blocks: int = 2,
        blend_with_reference: bool = True,
        use_previous_frame: bool = False,
        landmark_mode: str = "heatmap",
        landmark_sigma: float = 2.0,
        landmark_groups: str | list[list[int]] = "parts",
        contour_thickness: float = 1.0,
        warp_reference: bool = False,
        warp_sigma: float = 0.1,
        mouth_shade: float = 0.0,
        mouth_shade_height: float = 1.6,
        mouth_from_photo: bool = False,
        mouth_teeth: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= mouth_shade <= 1.0:
            raise ValueError(f"mouth_shade must be in [0, 1], got {mouth_shade}")
        if not 0.0 <= mouth_teeth <= 1.0:
            raise ValueError(f"mouth_teeth must be in [0, 1], got {mouth_teeth}")
        if not mouth_shade_height > 0:
            raise ValueError(f"mouth_shade_height must be positive, got {mouth_shade_height}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        if image_size % 2**depth:
            raise ValueError(f"image_size {image_size} must be divisible by 2**depth = {2**depth}")
        if norm == "instance" and image_size // 2**depth < 2:
            raise ValueError(
                f"depth {depth} leaves a {image_size // 2**depth}x{image_size // 2**depth} bottleneck at "
                f"{image_size}², too small for instance norm: use a smaller depth"
            )
        norm_layer(norm, 1)  # validate the name before building anything
        self.image_size = image_size
        self.depth = depth
        self.blend_with_reference = blend_with_reference
        self.use_previous_frame = use_previous_frame
        self.warp_reference = warp_reference
        self.warp_sigma = warp_sigma
        self.mouth_shade = mouth_shade
        self.mouth_shade_height = mouth_shade_height
        self.mouth_from_photo = mouth_from_photo
        self.mouth_teeth = mouth_teeth
        self.renderer = LandmarkRenderer(
            image_size, landmark_mode, sigma=landmark_sigma, groups=landmark_groups, thickness=contour_thickness
        )

        in_channels = 3 + 2 * self.renderer.channels + (3 if use_previous_frame else 0) + (3 if warp_reference else 0)
        widths = [min(base_channels * 2**level, max_channels) for level in range(depth + 1)]
        self.stem = conv_block(in_channels, widths[0], norm, leaky=True)
        # Encoder level i: halve the resolution, then one more conv at the new size.
        self.encoder = nn.ModuleList(
            nn.Sequential(
                conv_block(widths[i - 1], widths[i], norm, stride=2, leaky=True),
                conv_block(widths[i], widths[i], norm, leaky=True),
            )
            for i in range(1, depth + 1)
        )
        self.bottleneck = nn.Sequential(*(ResidualBlock(widths[depth], norm) for _ in range(residual_blocks)))
        # Decoder level i (deepest first): upsample (nearest + conv, no checkerboard artefacts),
        # join the skip of the same resolution, fuse.
        self.decoder = nn.ModuleList(
            nn.Sequential(
                conv_block(widths[i] + widths[i - 1], widths[i - 1], norm),
                conv_block(widths[i - 1], widths[i - 1], norm),
            )
            for i in range(depth, 0, -1)
        )
        self.to_image = nn.Conv2d(widths[0], 3, 3, padding=1)
        self.to_mask = nn.Conv2d(widths[0], 1, 3, padding=1) if blend_with_reference else None
        if self.to_mask is not None and warp_reference:
            nn.init.constant_(self.to_mask.bias, -3.0)  # start by trusting the warp (mask ≈ 0.05)

    def forward(
        self,
        reference: torch.Tensor,
        target_landmarks: torch.Tensor,
        reference_landmarks: torch.Tensor,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.generate(reference, target_landmarks, reference_landmarks, previous).image

    def generate(
        self,
        reference: torch.Tensor,
        target_landmarks: torch.Tensor,
        reference_landmarks: torch.Tensor,
        previous: torch.Tensor | None = None,
        mouth_from_photo: bool | None = None,
        mouth_teeth: float | None = None,
    ) -> GeneratorOutput:
        """The frame, plus the raw generated pixels and the blend mask (for mask-weighted losses).
        `mouth_from_photo` and `mouth_teeth` override the module's settings for this call (None:
        keep them)."""
        size = self.image_size
        if reference.ndim != 4 or tuple(reference.shape[1:]) != (3, size, size):
            raise ValueError(f"reference must be (B, 3, {size}, {size}), got {tuple(reference.shape)}")
        base, field = reference, None
        if self.warp_reference:
            if target_landmarks.shape[-2:] != (68, 2) or reference_landmarks.shape[-2:] != (68, 2):
                raise ValueError("a warping generator needs landmark points, not landmark images")
            base, field = warp_to_landmarks(reference, reference_landmarks, target_landmarks, self.warp_sigma)
        inputs = [
            reference,
            self.renderer.as_images(target_landmarks).to(reference.dtype),
            self.renderer.as_images(reference_landmarks).to(reference.dtype),
        ]
        if self.warp_reference:
            inputs.append(base)
        if self.use_previous_frame:
            inputs.append(reference if previous is None else previous)
        elif previous is not None:
            raise ValueError("a previous frame was given, but this generator has use_previous_frame=False")

        x = self._body(torch.cat(inputs, dim=1))
        generated = torch.tanh(self.to_image(x))
        if self.to_mask is None:
            return GeneratorOutput(generated, generated, None, field)
        mask = torch.sigmoid(self.to_mask(x))
        if self.warp_reference and not self.training:
            # Where the network barely asks for its own pixels (the mask's resting level, ~0.05),
            # the warped photo is used exactly: its pixels are sharper than any the U-Net draws.
            mask = ((mask - MASK_FLOOR) / (1 - MASK_FLOOR)).clamp(0, 1)
        if self.warp_reference:  # the mouth's inside is always drawn: no warp can make it
            mouth = inner_mouth_mask(target_landmarks, size).to(mask.dtype)
            keep = self.mouth_from_photo if mouth_from_photo is None else mouth_from_photo
            if keep and not self.training:  # ... unless the photo shows it already
                share = new_opening_share(target_landmarks, reference_landmarks).to(mask.dtype)
                mouth = mouth * share[:, None, None, None]
            mask = 1 - (1 - mask) * (1 - mouth)
            if self.mouth_shade > 0 and not self.training:
                teeth = self.mouth_teeth if mouth_teeth is None else mouth_teeth
                generated, mask = self._shade_mouth(generated, mask, target_landmarks, reference_landmarks, teeth)
        return GeneratorOutput(mask * generated + (1 - mask) * base, generated, mask, field)

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, encoder, bottleneck and decoder: the U-Net up to its output layers, in the dtype
        their weights are in (`lower_body`); the output layers get their own dtype back."""
        x = self.stem(x.to(self.body_dtype()))
        skips = [x]
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        x = self.bottleneck(skips.pop())
        for level in self.decoder:
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = level(torch.cat([x, skips.pop()], dim=1))
        return x.to(self.to_image.weight.dtype)

    def body_dtype(self) -> torch.dtype:
        """What the body's weights are in (float32 unless `lower_body` changed it)."""
        return self.stem[0].weight.dtype

    def lower_body(self, dtype: torch.dtype) -> None:
        """For inference only: run the convolutions between input and output layers in `dtype`.

        bfloat16 halves their time on hardware with native bf16 and moves the frames by at most ~2
        of 255 levels, because everything that places pixels (the warp, the landmark images, the
        output layers, the blend) stays in its own dtype. Casts the weights in place: lossy, so
        done on a model kept for generation (`talkface.generation.precision`).
        """
        for part in (self.stem, self.encoder, self.bottleneck, self.decoder):
            part.to(dtype)

    def _shade_mouth(
        self,
        generated: torch.Tensor,
        mask: torch.Tensor,
        target: torch.Tensor,
        reference: torch.Tensor,
        teeth: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Paint the open mouth's inside over the U-Net's, folded into (generated, mask).

        Trained with L1 on few pixels, the U-Net draws the inside of a slightly open mouth as a
        light blur that dlib (and a viewer) reads as closed lips. The frame becomes
        `(1 - s) * frame + s * paint` with s = mouth_shade × the newly opened inside
        (`new_mouth_opening_mask`: `mouth_shade_height` gaps tall, weighted by the share of the
        gap the photo does not already show); written as a new mask and new generated pixels, so
        the full-resolution paste (which reads those two) shades exactly alike. The paint is
        black, or with `teeth` (`mouth_teeth`) upper teeth above a dark cavity (`mouth_inside`).
        """
        shade = self.mouth_shade * new_mouth_opening_mask(target, reference, self.image_size, self.mouth_shade_height)
        shade = shade.to(mask.dtype)  # the mask may be half precision where the landmarks are not
        kept = (1 - shade) * mask  # the generated pixels' share of the frame
        shaded_mask = kept + shade
        paint = -1.0  # black
        if teeth > 0:
            paint = mouth_inside(target, self.image_size, teeth).to(generated.dtype)
        mixed = (kept * generated + shade * paint) / shaded_mask.clamp_min(1e-6)
        return torch.where(shaded_mask > 1e-6, mixed, generated), shaded_mask
