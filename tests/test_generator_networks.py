"""Stage 2 networks: landmark images, the U-Net generator, the patch discriminators.

Small widths keep the gradient and conditioning tests fast; shape tests use the defaults.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from talkface.faces import PARTS, load_template, render_contours, render_heatmaps_torch
from talkface.networks.landmark_images import LandmarkRenderer
from talkface.networks.patch_discriminator import PatchDiscriminator, TemporalPatchDiscriminator
from talkface.networks.unet_generator import UNetGenerator

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def template_landmarks(size: int, batch: int = 1, on_pixels: bool = False) -> torch.Tensor:
    """The template face as normalised landmarks (B, 68, 2); `on_pixels` snaps points to pixel
    centres so a drawn point lands exactly on one pixel."""
    points = load_template(size)
    if on_pixels:
        points = np.rint(points)
    return torch.tensor(points / size, dtype=torch.float32).expand(batch, 68, 2).clone()


def open_mouth(landmarks: torch.Tensor, amount: float = 0.06) -> torch.Tensor:
    """Move the lower lip and chin down: the kind of change stage 2 must follow."""
    moved = landmarks.clone()
    lower = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 64, 65, 66, 67]
    moved[:, lower, 1] += amount
    return moved


def small_generator(**kwargs) -> UNetGenerator:
    settings = dict(base_channels=8, depth=3, residual_blocks=1)
    settings.update(kwargs)
    return UNetGenerator(**settings)


def random_frames(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


# --- landmark images --------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("groups", ["parts", "points"])
def test_heatmaps_match_the_reference_renderer(device, groups):
    landmarks = template_landmarks(128, batch=3) + 0.01 * torch.randn(3, 68, 2)
    renderer = LandmarkRenderer(128, "heatmap", sigma=2.5, groups=groups).to(device)
    images = renderer(landmarks.to(device))
    reference = render_heatmaps_torch(landmarks * 128, 128, sigma=2.5, groups=groups)
    assert images.shape == (3, renderer.channels, 128, 128) == reference.shape
    assert images.device.type == device
    # The windowed renderer cuts the Gaussians off beyond 4 sigma (exp(-8) ~ 3e-4).
    torch.testing.assert_close(images.cpu(), reference, atol=1e-3, rtol=0)


def test_heatmaps_peak_at_each_landmark_in_its_part_channel():
    landmarks = template_landmarks(128, on_pixels=True)
    images = LandmarkRenderer(128, "heatmap", sigma=2.0)(landmarks)[0]
    pixels = (landmarks[0] * 128).round().long()
    for channel, part in enumerate(PARTS.values()):
        for point in part:
            x, y = pixels[point]
            assert images[channel, y, x] == pytest.approx(1.0, abs=1e-5)
    # Energy is at the landmarks only: the image corner is dark in every channel.
    assert images[:, :10, :10].max() < 1e-6


def test_contours_light_landmarks_and_segments_in_their_part_channel():
    size = 128
    landmarks = template_landmarks(size, on_pixels=True)
    renderer = LandmarkRenderer(size, "contour", thickness=1.0)
    images = renderer(landmarks)[0]
    assert renderer.channels == 6 and images.shape == (6, size, size)
    assert 0 <= images.min() and images.max() <= 1
    pixels = (landmarks[0] * size).round().long()
    for channel, part in enumerate(PARTS.values()):
        for point in part:
            x, y = pixels[point]
            assert images[channel, y, x] == pytest.approx(1.0)
    # Between two landmarks, the middle of their segment (upper lip) is on the line too.
    middle = ((landmarks[0, 51] + landmarks[0, 52]) / 2 * size).round().long()
    assert images[4, middle[1], middle[0]] > 0.5
    # A lip pixel is not drawn in the eyes channel, and the corner of the crop is empty.
    x, y = pixels[51]
    assert images[3, y, x] == 0 and images[:, :10, :10].max() == 0


def test_contours_agree_with_the_opencv_drawing():
    size = 128
    points = load_template(size)
    ours = LandmarkRenderer(size, "contour")(torch.tensor(points / size)[None])[0].amax(0).numpy() > 0.5
    drawn = render_contours(points, size, thickness=1, color=False) > 127
    iou = (ours & drawn).sum() / (ours | drawn).sum()
    assert iou > 0.6, f"contour rasterisation disagrees with cv2.polylines (IoU {iou:.2f})"


@pytest.mark.parametrize("mode", ["heatmap", "contour"])
def test_renderer_takes_clips_and_points_off_the_crop(mode):
    renderer = LandmarkRenderer(64, mode)
    clips = template_landmarks(64, batch=2).unsqueeze(1).expand(2, 5, 68, 2)
    assert renderer(clips).shape == (2, 5, renderer.channels, 64, 64)
    outside = torch.full((2, 68, 2), -1.0)
    assert renderer(outside).max() == 0
    partly = template_landmarks(64, batch=1)
    partly[:, :17] += 0.6  # the jaw well past the right and bottom edges
    assert renderer(partly).isfinite().all()
    with pytest.raises(ValueError, match="68, 2"):
        renderer(torch.zeros(2, 20, 2))


def test_renderer_passes_rendered_images_through_and_rejects_other_shapes():
    renderer = LandmarkRenderer(64, "heatmap")
    images = renderer(template_landmarks(64, batch=2))
    assert renderer.as_images(images) is images
    with pytest.raises(ValueError, match="landmark images"):
        renderer.as_images(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="mode"):
        LandmarkRenderer(64, "dots")


def test_renderer_timing_at_batch_16(capsys):
    landmarks = template_landmarks(128, batch=16) + 0.005 * torch.randn(16, 68, 2)
    timings = {}
    for mode in ("heatmap", "contour"):
        renderer = LandmarkRenderer(128, mode)
        renderer(landmarks)  # warm-up
        start = time.perf_counter()
        renderer(landmarks)
        timings[mode] = time.perf_counter() - start
    with capsys.disabled():
        print("\n[timing] render 16 x 128²: " + ", ".join(f"{m} {t * 1e3:.1f} ms" for m, t in timings.items()))


# --- generator --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [128, 256])
def test_generator_shapes_and_range_at_default_width(size):
    generator = UNetGenerator(image_size=size)
    reference = random_frames(2, size)
    landmarks = template_landmarks(size, batch=2)
    with torch.no_grad():
        out = generator.generate(reference, open_mouth(landmarks), landmarks)
    assert out.image.shape == out.generated.shape == (2, 3, size, size)
    assert out.mask.shape == (2, 1, size, size)
    assert out.image.min() >= -1 and out.image.max() <= 1
    assert 0 <= out.mask.min() and out.mask.max() <= 1
    # The output is the mask's blend of the network's pixels and the reference.
    torch.testing.assert_close(out.image, out.mask * out.generated + (1 - out.mask) * reference)


def test_default_generator_size_is_what_the_docs_say():
    parameters = sum(p.numel() for p in UNetGenerator().parameters())
    assert 4.0e6 < parameters < 4.6e6, parameters


@pytest.mark.parametrize("blend", [True, False])
@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_every_generator_parameter_gets_a_gradient(blend, norm):
    generator = small_generator(image_size=64, blend_with_reference=blend, norm=norm)
    landmarks = template_landmarks(64, batch=2)
    out = generator(random_frames(2, 64), open_mouth(landmarks), landmarks)
    (out - random_frames(2, 64, seed=1)).abs().mean().backward()
    missing = [name for name, p in generator.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reaches: {missing}"
    assert (generator.generate(random_frames(2, 64), landmarks, landmarks).mask is None) == (not blend)


@pytest.mark.parametrize("blend", [True, False])
def test_target_landmarks_change_the_output(blend):
    torch.manual_seed(0)
    generator = small_generator(blend_with_reference=blend).eval()
    reference = random_frames(1, 128)
    landmarks = template_landmarks(128)
    with torch.no_grad():
        closed = generator(reference, landmarks, landmarks)
        again = generator(reference, landmarks, landmarks)
        opened = generator(reference, open_mouth(landmarks), landmarks)
    torch.testing.assert_close(closed, again)
    changed = (opened - closed).abs()
    assert changed.mean() > 1e-3
    # A random network already reacts most where the landmarks moved (the lower face).
    assert changed[..., 64:, :].mean() > changed[..., :40, :].mean()


def test_reference_landmarks_are_an_input_too():
    torch.manual_seed(0)
    generator = small_generator(image_size=64).eval()
    reference = random_frames(1, 64)
    landmarks = template_landmarks(64)
    with torch.no_grad():
        a = generator(reference, landmarks, landmarks)
        b = generator(reference, landmarks, open_mouth(landmarks))
    assert (a - b).abs().mean() > 1e-3


def test_contour_conditioned_generator_at_256():
    generator = small_generator(image_size=256, landmark_mode="contour", contour_thickness=2.0)
    landmarks = template_landmarks(256, batch=2)
    out = generator(random_frames(2, 256), open_mouth(landmarks), landmarks)
    assert out.shape == (2, 3, 256, 256) and out.abs().max() <= 1


def test_previous_frame_input():
    torch.manual_seed(0)
    generator = small_generator(image_size=64, use_previous_frame=True).eval()
    assert generator.stem[0].in_channels == 3 + 2 * 6 + 3
    reference, previous = random_frames(1, 64), random_frames(1, 64, seed=2)
    landmarks = template_landmarks(64)
    with torch.no_grad():
        with_previous = generator(reference, landmarks, landmarks, previous)
        first_frame = generator(reference, landmarks, landmarks)
        reference_as_previous = generator(reference, landmarks, landmarks, reference)
    assert (with_previous - first_frame).abs().mean() > 1e-3
    # No previous frame (the start of a sequence) means the reference stands in for it.
    torch.testing.assert_close(first_frame, reference_as_previous)
    with pytest.raises(ValueError, match="use_previous_frame"):
        small_generator(image_size=64)(reference, landmarks, landmarks, previous)


def test_generator_rejects_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="divisible"):
        UNetGenerator(image_size=100, depth=3)
    with pytest.raises(ValueError, match="instance norm"):
        UNetGenerator(image_size=128, depth=7)
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="layer")
    generator = small_generator()
    landmarks = template_landmarks(128)
    with pytest.raises(ValueError, match="reference"):
        generator(random_frames(1, 64), landmarks, landmarks)


def test_default_generator_timing_batch_8(capsys):
    generator = UNetGenerator()
    reference = random_frames(8, 128)
    landmarks = template_landmarks(128, batch=8)
    start = time.perf_counter()
    out = generator(reference, open_mouth(landmarks), landmarks)
    out.mean().backward()
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\n[timing] default UNetGenerator forward+backward, 8 x 128² on CPU "
            f"({torch.get_num_threads()} threads): {elapsed:.2f} s"
        )


# --- discriminators ---------------------------------------------------------------------------


@pytest.mark.parametrize("size, patches", [(128, 14), (256, 30)])
def test_patch_discriminator_returns_logits_and_features(size, patches):
    discriminator = PatchDiscriminator(image_size=size)
    image = random_frames(2, size).requires_grad_()
    logits, features = discriminator(image, template_landmarks(size, batch=2))
    assert logits.shape == (2, 1, patches, patches)
    assert [f.shape[1] for f in features] == [32, 64, 128, 256]
    assert all(f.shape[0] == 2 for f in features)
    logits.mean().backward()
    assert image.grad.abs().sum() > 0  # the generator can learn through it
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())


def test_discriminator_is_conditioned_on_landmarks_and_takes_rendered_images():
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(base_channels=16, spectral_norm=False).eval()
    image = random_frames(1, 128)
    landmarks = template_landmarks(128)
    with torch.no_grad():
        closed, _ = discriminator(image, landmarks)
        opened, _ = discriminator(image, open_mouth(landmarks))
        rendered, _ = discriminator(image, discriminator.renderer(landmarks))
    assert (closed - opened).abs().max() > 1e-4
    torch.testing.assert_close(closed, rendered)


def test_spectral_norm_bounds_each_layer():
    discriminator = PatchDiscriminator(image_size=32, base_channels=16, n_layers=2, spectral_norm=True)
    image, landmarks = random_frames(1, 32), template_landmarks(32)
    for _ in range(30):  # power iteration: one step per training forward
        discriminator(image, landmarks)
    convs = [block[0] for block in discriminator.blocks]
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = PatchDiscriminator(image_size=32, n_layers=2, spectral_norm=False)
    assert not any(hasattr(block[0], "parametrizations") for block in plain.blocks)


def test_temporal_discriminator_over_a_clip():
    torch.manual_seed(0)
    discriminator = TemporalPatchDiscriminator(base_channels=8, spectral_norm=False).eval()
    clip = torch.rand(2, 4, 3, 128, 128) * 2 - 1
    landmarks = template_landmarks(128, batch=2).unsqueeze(1).repeat(1, 4, 1, 1)
    with torch.no_grad():
        logits, features = discriminator(clip, landmarks)
        assert logits.shape == (2, 1, 4, 14, 14)
        assert len(features) == 4 and features[0].shape == (2, 8, 4, 64, 64)
        # A change in the last frame reaches the logits of the first: it judges motion.
        changed = clip.clone()
        changed[:, -1] = -changed[:, -1]
        logits_changed, _ = discriminator(changed, landmarks)
    assert (logits_changed[:, :, 0] - logits[:, :, 0]).abs().max() > 1e-5
    with pytest.raises(ValueError, match="frames"):
        discriminator(clip, landmarks[:, :3])
