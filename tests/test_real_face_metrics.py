"""Real-face metrics against plain numpy references: per batch (forward), accumulated (compute).

MouthOpeningCorrelation, UpperFacePSNR and SharpnessRatio. The references below are written
independently with loops, literal iBUG indices, np.corrcoef and cv2.Laplacian. Sanity cases:
identical inputs (correlation 1, PSNR at its 100 dB cap, sharpness ratio 1), a mouth that opens
when the real one closes (negative), a blurred copy (ratio < 0.8, also on a real photo with
dlib landmarks). The slow test runs the metrics in 2 gloo processes in a subprocess and compares
the synced values and counts with one process on the whole data.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from talkface.metrics import (
    MouthOpeningCorrelation,
    SharpnessRatio,
    UpperFacePSNR,
    landmark_boxes,
    laplacian_variance,
    mouth_opening,
    mouth_opening_correlation,
    sharpness_ratio,
    upper_face_psnr,
)
from tests.helpers.real_data import REPO

# ---------------------------------------------------------------- numpy references (loops)

EYES_NOSE = list(range(27, 48))  # nose 27–35, eyes 36–47
FACE = list(range(68))


def np_opening(points):
    """Inner-lip gap (61↔67, 62↔66, 63↔65) over outer mouth width (48↔54) of one (68, 2) frame."""
    gap = np.mean([math.hypot(*(points[61 + i] - points[67 - i])) for i in range(3)])
    return gap / math.hypot(*(points[48] - points[54]))


def np_clip_correlations(pred, target, mask=None, min_std=1e-6):
    """Per clip: (correlation or None when skipped, still)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    out = []
    for b in range(pred.shape[0]):
        frames = [t for t in range(pred.shape[1]) if mask is None or mask[b][t]]
        generated = np.array([np_opening(pred[b, t]) for t in frames])
        real = np.array([np_opening(target[b, t]) for t in frames])
        if len(frames) < 2 or real.std() <= min_std:
            out.append((None, False))
        elif generated.std() <= min_std:
            out.append((0.0, True))
        else:
            out.append((float(np.corrcoef(generated, real)[0, 1]), False))
    return out


def np_box(points, height, width, parts, margin):
    xs = [points[i][0] * width for i in parts]
    ys = [points[i][1] * height for i in parts]
    pad_x, pad_y = margin * (max(xs) - min(xs)), margin * (max(ys) - min(ys))
    x0 = min(max(math.floor(min(xs) - pad_x), 0), width - 1)
    y0 = min(max(math.floor(min(ys) - pad_y), 0), height - 1)
    x1 = max(min(math.ceil(max(xs) + pad_x), width), x0 + 1)
    y1 = max(min(math.ceil(max(ys) + pad_y), height), y0 + 1)
    return x0, y0, x1, y1


def np_region_frames(frames, photo, landmarks, mask, parts, margin):
    """Per clip: (valid frames' regions, photo region) as float64 arrays."""
    frames, photo, landmarks = np.asarray(frames, np.float64), np.asarray(photo, np.float64), np.asarray(landmarks)
    height, width = photo.shape[-2:]
    for b in range(photo.shape[0]):
        x0, y0, x1, y1 = np_box(landmarks[b], height, width, parts, margin)
        valid = [t for t in range(frames.shape[1]) if mask is None or mask[b][t]]
        yield [frames[b, t, :, y0:y1, x0:x1] for t in valid], photo[b, :, y0:y1, x0:x1]


def np_upper_face_psnr(frames, photo, landmarks, mask=None, margin=0.1, max_db=100.0):
    values = []
    for regions, reference in np_region_frames(frames, photo, landmarks, mask, EYES_NOSE, margin):
        for region in regions:
            mse = np.mean((region - reference) ** 2)
            values.append(max_db if mse == 0 else min(max_db, 10 * math.log10(1.0 / mse)))
    return values


def np_laplacian_variance(region):
    grey = region[0] if region.shape[0] == 1 else 0.299 * region[0] + 0.587 * region[1] + 0.114 * region[2]
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=1)[1:-1, 1:-1].var())


def np_sharpness_ratios(frames, photo, landmarks, mask=None, margin=0.0):
    values = []
    for regions, reference in np_region_frames(frames, photo, landmarks, mask, FACE, margin):
        values += [np_laplacian_variance(region) / np_laplacian_variance(reference) for region in regions]
    return values


def mean(values):
    return float(np.mean(values)) if len(values) else float("nan")


# ---------------------------------------------------------------- data


def mouth_face(opening, width=0.2, centre=(0.5, 0.6)):
    """(68, 2) landmarks: a face whose mouth has outer width `width` and inner gap opening·width."""
    points = 0.3 + 0.4 * torch.rand(68, 2, generator=torch.Generator().manual_seed(7))
    cx, cy = centre
    points[48] = torch.tensor([cx - width / 2, cy])
    points[54] = torch.tensor([cx + width / 2, cy])
    for i, dx in enumerate((-0.05, 0.0, 0.05)):
        points[61 + i] = torch.tensor([cx + dx, cy - opening * width / 2])
        points[67 - i] = torch.tensor([cx + dx, cy + opening * width / 2])
    return points


def speaking_clip(openings, **kwargs):
    return torch.stack([mouth_face(value, **kwargs) for value in openings])


def landmark_batches(seed=0):
    """Three batches of (generated, real, mask) clips, with a skipped clip and a still one."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for size, frames in ((3, 8), (2, 5), (4, 6)):
        real = 0.3 + 0.4 * torch.rand(size, frames, 68, 2, generator=generator)
        generated = real + 0.04 * torch.randn(size, frames, 68, 2, generator=generator)
        mask = None
        if size == 3:
            mask = torch.rand(size, frames, generator=generator) > 0.3
            mask[0, :4] = True
            generated[0, ~mask[0]] = torch.nan  # padding may hold anything
            real[1] = real[1, :1]  # real mouth still: skipped
        if size == 4:
            generated[2] = generated[2, :1]  # generated mouth still: 0
        batches.append((generated, real, mask))
    return batches


def image_batches(seed=0, size=40, frames=4):
    """Three batches of (generated clips, photos, photo landmarks, mask); one frame is the photo itself."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for batch, mask_kind in ((2, "bool"), (3, None), (1, "float")):
        photo = torch.rand(batch, 3, size, size, generator=generator)
        noise = 0.1 * torch.randn(batch, frames, 3, size, size, generator=generator)
        clips = (photo.unsqueeze(1) + noise).clamp(0, 1)
        clips[0, 0] = photo[0]  # identical frame: PSNR capped at 100 dB
        landmarks = 0.15 + 0.7 * torch.rand(batch, 68, 2, generator=generator)
        mask = None
        if mask_kind == "bool":
            mask = torch.rand(batch, frames, generator=generator) > 0.3
            mask[0, 0] = True
        elif mask_kind == "float":
            mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
        batches.append((clips, photo, landmarks, mask))
    return batches


def np_mask(mask):
    return None if mask is None else (mask.numpy() != 0)


# ---------------------------------------------------------------- mouth-opening correlation


def test_mouth_opening_is_inner_gap_over_mouth_width_and_free_of_scale():
    face = mouth_face(0.25)
    assert mouth_opening(face).item() == pytest.approx(0.25, rel=1e-5)
    assert mouth_opening(face).item() == pytest.approx(np_opening(face.numpy()), rel=1e-6)
    moved = face * 3.0 + 10.0  # pixels of a bigger image, shifted
    assert mouth_opening(moved).item() == pytest.approx(0.25, rel=1e-5)
    assert mouth_opening(torch.stack([face, mouth_face(0.0)])).tolist() == pytest.approx([0.25, 0.0], abs=1e-6)


def test_mouth_opening_correlation_matches_numpy_per_batch_and_accumulated():
    metric = MouthOpeningCorrelation()
    everything = []
    counts = {"clips": 0, "still_clips": 0, "skipped_clips": 0}
    for generated, real, mask in landmark_batches():
        reference = np_clip_correlations(generated.numpy(), real.numpy(), np_mask(mask))
        values = [value for value, _ in reference if value is not None]
        everything += values
        counts["clips"] += len(values)
        counts["still_clips"] += sum(still for _, still in reference)
        counts["skipped_clips"] += sum(value is None for value, _ in reference)
        assert metric(generated, real, mask).item() == pytest.approx(mean(values), rel=1e-5)
        functional = mouth_opening_correlation(generated, real, mask)
        assert functional.item() == pytest.approx(mean(values), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)
    assert counts == {"clips": 8, "still_clips": 1, "skipped_clips": 1}  # the data has both cases
    assert metric.clip_counts() == counts


def test_identical_mouths_correlate_1_and_opposite_ones_negatively():
    openings = [0.0, 0.1, 0.3, 0.45, 0.2, 0.05, 0.35]
    real = speaking_clip(openings).unsqueeze(0)
    assert MouthOpeningCorrelation()(real, real).item() == pytest.approx(1.0, abs=1e-6)
    # Another face size and place, the same motion: still 1 (the opening is a ratio).
    other = speaking_clip(openings, width=0.3, centre=(0.4, 0.7)).unsqueeze(0)
    assert MouthOpeningCorrelation()(other, real).item() == pytest.approx(1.0, abs=1e-6)
    # Opens when the real one closes.
    opposite = speaking_clip([0.45 - value for value in openings]).unsqueeze(0)
    assert MouthOpeningCorrelation()(opposite, real).item() == pytest.approx(-1.0, abs=1e-6)
    # Half a frame late: positive but clearly below 1.
    late = speaking_clip([openings[0], *openings[:-1]]).unsqueeze(0)
    assert 0.0 < MouthOpeningCorrelation()(late, real).item() < 0.9


def test_a_still_generated_mouth_counts_as_0_and_a_still_real_mouth_is_skipped():
    real = speaking_clip([0.0, 0.2, 0.4, 0.1])
    still = speaking_clip([0.2] * 4)
    metric = MouthOpeningCorrelation()
    assert metric(torch.stack([still, real]), torch.stack([real, real])).item() == pytest.approx(0.5, abs=1e-6)
    assert metric.clip_counts() == {"clips": 2, "still_clips": 1, "skipped_clips": 0}
    metric.reset()
    assert math.isnan(metric(real.unsqueeze(0), still.unsqueeze(0)).item())  # nothing counted yet
    assert metric.clip_counts() == {"clips": 0, "still_clips": 0, "skipped_clips": 1}
    # One valid frame only: no correlation either, skipped.
    mask = torch.tensor([[True, False, False, False]])
    metric.update(real.unsqueeze(0), real.unsqueeze(0), mask)
    assert metric.clip_counts()["skipped_clips"] == 2
    # A real opening varying less than min_std counts as not varying.
    wide = MouthOpeningCorrelation(min_std=0.5)
    wide.update(real.unsqueeze(0), real.unsqueeze(0))
    assert wide.clip_counts()["skipped_clips"] == 1


def test_padded_frames_do_not_change_the_correlation():
    real = speaking_clip([0.0, 0.2, 0.4, 0.1, 0.3]).unsqueeze(0)
    generated = speaking_clip([0.05, 0.25, 0.3, 0.0, 0.35]).unsqueeze(0)
    padded_real = torch.cat([real, torch.full((1, 3, 68, 2), torch.nan)], dim=1)
    padded_generated = torch.cat([generated, torch.rand(1, 3, 68, 2)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    expected = MouthOpeningCorrelation()(generated, real).item()
    assert MouthOpeningCorrelation()(padded_generated, padded_real, mask).item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- face regions


def test_landmark_boxes_match_numpy_and_stay_inside_the_image():
    generator = torch.Generator().manual_seed(3)
    landmarks = torch.rand(5, 68, 2, generator=generator) * 1.2 - 0.1  # some points outside the image
    parts = (range(36, 48), range(27, 36))
    for size, margin in (((40, 40), 0.1), ((30, 50), 0.0), ((64, 48), 0.5)):
        boxes = landmark_boxes(landmarks, parts, size, margin)
        expected = [np_box(points, *size, EYES_NOSE, margin) for points in landmarks.double().numpy()]
        assert [tuple(box) for box in boxes.tolist()] == expected
    points = torch.full((1, 68, 2), 0.5)
    points[0, 36:48] = torch.tensor([[0.25, 0.25], [0.75, 0.5]]).repeat(6, 1)
    assert landmark_boxes(points, parts, (100, 100), 0.1).tolist() == [[20, 22, 80, 53]]


# ---------------------------------------------------------------- upper-face PSNR


def test_upper_face_psnr_matches_numpy_per_batch_and_accumulated():
    metric = UpperFacePSNR()
    everything = []
    for clips, photo, landmarks, mask in image_batches():
        reference = np_upper_face_psnr(clips.numpy(), photo.numpy(), landmarks.numpy(), np_mask(mask))
        everything += reference
        assert metric(clips, photo, landmarks, mask).item() == pytest.approx(mean(reference), rel=1e-5)
        assert upper_face_psnr(clips, photo, landmarks, mask).item() == pytest.approx(mean(reference), rel=1e-5)
    assert 100.0 in everything  # the identical frame, capped
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)
    assert metric.frames.item() == len(everything)


def test_upper_face_psnr_caps_identical_frames_and_sees_only_the_eyes_and_nose():
    clips, photo, landmarks, _ = image_batches(seed=1)[1]
    same = photo.unsqueeze(1).repeat(1, 3, 1, 1, 1)
    assert UpperFacePSNR()(same, photo, landmarks).item() == 100.0
    assert UpperFacePSNR(max_db=60.0)(same, photo, landmarks).item() == 60.0
    landmarks = landmarks.clone()
    landmarks[:, 27:48] = 0.35 + 0.25 * landmarks[:, 27:48]  # eyes and nose in the middle
    x0, y0, x1, y1 = landmark_boxes(landmarks[:1], (range(36, 48), range(27, 36)), (40, 40), 0.1)[0].tolist()
    assert (x1 - x0) * (y1 - y0) < 0.25 * 40 * 40
    outside = clips[:1].clone()
    outside[..., y0:y1, x0:x1] = photo[:1, None, :, y0:y1, x0:x1]
    assert UpperFacePSNR()(outside, photo[:1], landmarks[:1]).item() == 100.0
    inside = photo[:1, None].repeat(1, clips.shape[1] - 1, 1, 1, 1)
    inside[..., y0:y1, x0:x1] = clips[:1, 1:, :, y0:y1, x0:x1]  # frames 1.. (0 is the photo)
    assert UpperFacePSNR()(inside, photo[:1], landmarks[:1]).item() < 25.0
    # One frame per clip (B, C, H, W) is a clip of one frame; uint8 is divided by 255.
    one = UpperFacePSNR()(clips[:, 0], photo, landmarks).item()
    assert one == pytest.approx(mean(np_upper_face_psnr(clips[:, :1].numpy(), photo.numpy(), landmarks.numpy())))
    to_uint8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731
    from_uint8 = lambda x: to_uint8(x).double() / 255  # noqa: E731
    expected = UpperFacePSNR()(from_uint8(clips), from_uint8(photo), landmarks).item()
    assert UpperFacePSNR()(to_uint8(clips), to_uint8(photo), landmarks).item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- sharpness ratio


def test_laplacian_variance_matches_opencv():
    image = torch.rand(2, 3, 20, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    values = laplacian_variance(image).tolist()
    assert values == pytest.approx([np_laplacian_variance(region) for region in image.numpy()], rel=1e-9)
    assert laplacian_variance(image[:, :1]).tolist() == pytest.approx(
        [np_laplacian_variance(r) for r in image[:, :1].numpy()]
    )
    assert laplacian_variance(torch.full((3, 10, 10), 0.5)).item() == 0.0


def test_sharpness_ratio_matches_numpy_per_batch_and_accumulated():
    metric = SharpnessRatio()
    everything = []
    for clips, photo, landmarks, mask in image_batches(seed=2):
        reference = np_sharpness_ratios(clips.numpy(), photo.numpy(), landmarks.numpy(), np_mask(mask))
        everything += reference
        assert metric(clips, photo, landmarks, mask).item() == pytest.approx(mean(reference), rel=1e-5)
        assert sharpness_ratio(clips, photo, landmarks, mask).item() == pytest.approx(mean(reference), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)
    assert metric.frame_counts() == {"frames": len(everything), "skipped_frames": 0}
    wide = SharpnessRatio(margin=0.3)
    clips, photo, landmarks, mask = image_batches(seed=2)[0]
    reference = np_sharpness_ratios(clips.numpy(), photo.numpy(), landmarks.numpy(), np_mask(mask), margin=0.3)
    assert wide(clips, photo, landmarks, mask).item() == pytest.approx(mean(reference), rel=1e-5)


def textured_photo(size=96, seed=5):
    """A photo-like texture: smoothed noise (fine and coarse detail) in 8 bits, (1, 3, size, size)."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.random((size, size, 3)), (0, 0), 0.7) + cv2.GaussianBlur(
        rng.random((size, size, 3)), (0, 0), 4
    )
    image = (255 * (image - image.min()) / np.ptp(image)).astype(np.uint8)
    return image, torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0)


def test_sharpness_ratio_is_1_for_the_photo_and_low_for_a_blurred_copy():
    image, photo = textured_photo()
    landmarks = 0.25 + 0.5 * torch.rand(1, 68, 2, generator=torch.Generator().manual_seed(6))
    assert SharpnessRatio()(photo, photo, landmarks).item() == pytest.approx(1.0, abs=1e-9)
    blurred = torch.from_numpy(cv2.GaussianBlur(image, (0, 0), 1.0)).permute(2, 0, 1).unsqueeze(0)
    assert SharpnessRatio()(blurred, photo, landmarks).item() < 0.8
    sharper = torch.from_numpy(cv2.addWeighted(image, 2.0, cv2.GaussianBlur(image, (0, 0), 1.0), -1.0, 0))
    assert SharpnessRatio()(sharper.permute(2, 0, 1).unsqueeze(0), photo, landmarks).item() > 1.0


def test_a_flat_photo_region_skips_its_frames_and_says_so():
    _, photo = textured_photo(size=40)
    flat = torch.full_like(photo, 128)
    landmarks = 0.3 + 0.4 * torch.rand(2, 68, 2, generator=torch.Generator().manual_seed(8))
    clips = torch.stack([photo, photo]).repeat(1, 3, 1, 1, 1)  # (2, 3, 3, 40, 40)
    metric = SharpnessRatio()
    assert metric(clips, torch.cat([photo, flat]), landmarks).item() == pytest.approx(1.0)
    assert metric.frame_counts() == {"frames": 3, "skipped_frames": 3}
    assert math.isnan(SharpnessRatio()(clips[1:], flat, landmarks[1:]).item())


def test_real_photo_identical_and_blurred(real_data):
    """A real face with dlib landmarks: the photo itself scores 1 and 100 dB, a blurred copy < 0.8."""
    from talkface.faces import get_extractor
    from talkface.faces.landmarks import largest_box
    from talkface.media.image_io import read_image

    image = read_image(real_data / "faces" / "makeittalk_obama.jpg")
    extractor = get_extractor("dlib")
    points = extractor.fit(image, largest_box(extractor.detect(image)))
    height, width = image.shape[:2]
    landmarks = torch.from_numpy(points / np.array([width, height])).float().unsqueeze(0)
    photo = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    blurred = torch.from_numpy(cv2.GaussianBlur(image, (0, 0), 1.0)).permute(2, 0, 1).unsqueeze(0)
    clip = torch.stack([photo[0], blurred[0]]).unsqueeze(0)
    assert SharpnessRatio()(photo, photo, landmarks).item() == pytest.approx(1.0, abs=1e-9)
    assert SharpnessRatio()(blurred, photo, landmarks).item() < 0.8
    assert UpperFacePSNR()(photo, photo, landmarks).item() == 100.0
    assert 25.0 < UpperFacePSNR()(blurred, photo, landmarks).item() < 45.0
    assert UpperFacePSNR()(clip, photo, landmarks).item() == pytest.approx(
        mean(np_upper_face_psnr(clip.numpy() / 255.0, photo.numpy() / 255.0, landmarks.numpy()))
    )


# ---------------------------------------------------------------- all: reset and bad input


RESET_CASES = {
    "mouth_opening": (MouthOpeningCorrelation, lambda seed: landmark_batches(seed)[2][:2]),
    "upper_face_psnr": (UpperFacePSNR, lambda seed: image_batches(seed)[1][:3]),
    "sharpness_ratio": (SharpnessRatio, lambda seed: image_batches(seed)[1][:3]),
}


@pytest.mark.parametrize("name", list(RESET_CASES))
def test_reset_forgets_earlier_updates(name):
    build, inputs = RESET_CASES[name]
    fresh = build()
    fresh.update(*inputs(11))
    metric = build()
    metric.update(*inputs(10))
    before = metric.compute().item()
    metric.reset()
    metric.update(*inputs(11))
    assert metric.compute().item() == pytest.approx(fresh.compute().item(), rel=1e-6)
    assert metric.compute().item() != pytest.approx(before, rel=1e-6)


def test_real_face_metrics_reject_bad_input():
    clips, photo, landmarks, _ = image_batches()[1]
    with pytest.raises(ValueError, match="shapes differ"):
        MouthOpeningCorrelation()(torch.rand(1, 3, 68, 2), torch.rand(1, 4, 68, 2))
    with pytest.raises(ValueError, match="mask"):
        MouthOpeningCorrelation()(torch.rand(1, 3, 68, 2), torch.rand(1, 3, 68, 2), torch.ones(1, 4))
    with pytest.raises(ValueError, match="min_std"):
        MouthOpeningCorrelation(min_std=-1.0)
    for metric in (UpperFacePSNR, SharpnessRatio):
        with pytest.raises(ValueError, match="photo must be"):
            metric()(clips, photo[:2], landmarks)
        with pytest.raises(ValueError, match="photo must be"):
            metric()(clips, photo[..., :20], landmarks)
        with pytest.raises(ValueError, match="landmarks"):
            metric()(clips, photo, landmarks[:, :20])
        with pytest.raises(ValueError, match="generated frames"):
            metric()(clips[0, 0], photo, landmarks)
        with pytest.raises(ValueError, match="margin"):
            metric(margin=-0.1)
    with pytest.raises(ValueError, match="max_db"):
        UpperFacePSNR(max_db=0.0)


# ---------------------------------------------------------------- DDP (2 processes, subprocess)


def _load_ddp_script():
    path = REPO / "tests" / "scripts" / "real_face_metrics_ddp.py"
    spec = importlib.util.spec_from_file_location("real_face_metrics_ddp", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_real_face_metrics_under_two_process_ddp_equal_one_process(tmp_path):
    script = _load_ddp_script()
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "scripts" / "real_face_metrics_ddp.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    batches = script.make_batches()
    single = script.build_metrics()
    script.update_all(single, batches)
    expected = script.results(single)
    assert expected["clip_counts"]["skipped_clips"] == 1 and expected["clip_counts"]["still_clips"] == 1
    assert expected["frame_counts"]["skipped_frames"] > 0
    # Rank 0 alone (its 3 batches, no sync) gives other values: the comparison below means something.
    local = script.build_metrics()
    script.update_all(local, [batches[i] for i in script.RANK_BATCHES[0]])
    alone = script.results(local)
    for name, value in expected.items():
        assert alone[name] != (pytest.approx(value, abs=1e-5) if isinstance(value, float) else value), name
    for rank in range(script.WORLD_SIZE):
        synced = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert synced.keys() == expected.keys()
        for name, value in expected.items():
            if isinstance(value, float):
                assert synced[name] == pytest.approx(value, abs=1e-5, rel=1e-5), (rank, name)
            else:
                assert synced[name] == value, (rank, name)
