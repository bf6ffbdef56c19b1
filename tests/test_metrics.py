"""Metrics against plain numpy references: per batch (forward), accumulated (compute), with masks.

The references below are written independently with loops (SSIM is checked against torchmetrics'
functional on the same crops instead). The slow test runs every metric in 2 gloo processes in a
subprocess and compares the synced values with one process on the whole data.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

from talkface.metrics import (
    FramePSNR,
    FrameSSIM,
    LandmarkDistance,
    LandmarkVelocityError,
    MouthPSNR,
    MouthSSIM,
    WordAccuracy,
    crop_boxes,
    landmark_distance,
    landmark_velocity_error,
    mouth_boxes,
    word_accuracy,
)
from tests.helpers.real_data import REPO

SCALE = 256.0
INDICES = {"mouth": list(range(48, 68)), "face": list(range(68))}


# ---------------------------------------------------------------- numpy references (loops)


def np_lmd_frames(pred, target, points, mask=None):
    """Per valid frame: mean over points of |centred pred - centred target|, in 256-crop pixels."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    values = []
    for b in range(pred.shape[0]):
        for t in range(pred.shape[1]):
            if mask is not None and not mask[b][t]:
                continue
            p = pred[b, t, INDICES[points]] * SCALE
            q = target[b, t, INDICES[points]] * SCALE
            p = p - p.mean(axis=0)
            q = q - q.mean(axis=0)
            values.append(np.mean([math.hypot(*(p[i] - q[i])) for i in range(len(p))]))
    return values


def np_velocity_pairs(pred, target, points, mask=None):
    """Per pair of consecutive valid frames: mean over points of |Δpred - Δtarget|, in pixels."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    values = []
    for b in range(pred.shape[0]):
        for t in range(pred.shape[1] - 1):
            if mask is not None and not (mask[b][t] and mask[b][t + 1]):
                continue
            dp = (pred[b, t + 1, INDICES[points]] - pred[b, t, INDICES[points]]) * SCALE
            dq = (target[b, t + 1, INDICES[points]] - target[b, t, INDICES[points]]) * SCALE
            values.append(np.mean([math.hypot(*(dp[i] - dq[i])) for i in range(len(dp))]))
    return values


def np_word_hits(logits, labels):
    """1/0 per labelled clip (label != -1): is the arg-max the label."""
    return [
        float(np.argmax(row) == label)
        for row, label in zip(np.asarray(logits), np.asarray(labels), strict=False)
        if label != -1
    ]


def np_psnr_images(pred, target):
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    return [10 * math.log10(1.0 / np.mean((p - t) ** 2)) for p, t in zip(pred, target, strict=False)]


def np_mouth_crops(images, landmarks, fraction=0.375):
    """Square crops of side round(fraction * min(H, W)) centred on the mouth mean, kept inside."""
    images, landmarks = np.asarray(images), np.asarray(landmarks, np.float64)
    height, width = images.shape[-2:]
    side = round(fraction * min(height, width))
    crops = []
    for image, points in zip(images, landmarks, strict=False):
        cx, cy = points[48:68].mean(axis=0) * (width, height)
        x0 = int(min(max(round(cx - side / 2), 0), width - side))
        y0 = int(min(max(round(cy - side / 2), 0), height - side))
        crops.append(image[:, y0 : y0 + side, x0 : x0 + side])
    return np.stack(crops)


def mean(values):
    return float(np.mean(values)) if values else float("nan")


# ---------------------------------------------------------------- data


def landmark_batches(seed=0):
    """Three batches of (pred, target, mask): a bool mask with a fully masked clip, a float mask, none."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for size, mask_kind in ((3, "bool"), (2, "float"), (4, None)):
        target = torch.rand(size, 7, 68, 2, generator=generator)
        pred = target + 0.03 * torch.randn(size, 7, 68, 2, generator=generator)
        mask = None
        if mask_kind == "bool":
            mask = torch.rand(size, 7, generator=generator) > 0.4
            mask[0] = False  # a clip with no valid frame contributes nothing
        elif mask_kind == "float":
            mask = (torch.rand(size, 7, generator=generator) > 0.4).float()
        batches.append((pred, target, mask))
    return batches


def image_batches(seed=0, size=48):
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for batch in (2, 3, 1):
        target = torch.rand(batch, 3, size, size, generator=generator)
        pred = (target + 0.1 * torch.randn(batch, 3, size, size, generator=generator)).clamp(0, 1)
        landmarks = 0.2 + 0.6 * torch.rand(batch, 68, 2, generator=generator)
        batches.append((pred, target, landmarks))
    return batches


def as_np_mask(mask):
    return None if mask is None else (mask.numpy() != 0)


# ---------------------------------------------------------------- stage 1


@pytest.mark.parametrize("points", ["mouth", "face"])
def test_lmd_matches_numpy_per_batch_and_accumulated(points):
    metric = LandmarkDistance(points=points)
    everything = []
    for pred, target, mask in landmark_batches():
        reference = np_lmd_frames(pred.numpy(), target.numpy(), points, as_np_mask(mask))
        everything += reference
        assert metric(pred, target, mask).item() == pytest.approx(mean(reference), rel=1e-5)
        assert landmark_distance(pred, target, points, mask=mask).item() == pytest.approx(mean(reference), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)


@pytest.mark.parametrize("points", ["mouth", "face"])
def test_velocity_error_matches_numpy_per_batch_and_accumulated(points):
    metric = LandmarkVelocityError(points=points)
    everything = []
    for pred, target, mask in landmark_batches(seed=1):
        reference = np_velocity_pairs(pred.numpy(), target.numpy(), points, as_np_mask(mask))
        everything += reference
        assert metric(pred, target, mask).item() == pytest.approx(mean(reference), rel=1e-5)
        functional = landmark_velocity_error(pred, target, points, mask=mask)
        assert functional.item() == pytest.approx(mean(reference), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)


def test_word_accuracy_matches_numpy_and_ignores_unlabelled_clips():
    generator = torch.Generator().manual_seed(2)
    metric = WordAccuracy()
    everything = []
    for size in (6, 4, 5):
        logits = torch.randn(size, 10, generator=generator)
        labels = torch.randint(0, 10, (size,), generator=generator)
        labels[: size // 2] = logits[: size // 2].argmax(dim=1)  # some hits for sure
        labels[-1] = -1
        reference = np_word_hits(logits.numpy(), labels.numpy())
        everything += reference
        assert metric(logits, labels).item() == pytest.approx(mean(reference))
        assert word_accuracy(logits, labels).item() == pytest.approx(mean(reference))
    assert metric.compute().item() == pytest.approx(mean(everything))
    # An all-unlabelled batch adds nothing.
    metric.update(torch.randn(3, 10), torch.full((3,), -1))
    assert metric.compute().item() == pytest.approx(mean(everything))


def test_mouth_lmd_ignores_the_jaw_but_face_lmd_does_not():
    pred, target, _ = landmark_batches()[0]
    moved = pred.clone()
    moved[:, :, 0:17] += 0.05 * torch.randn_like(moved[:, :, 0:17])
    for metric in (landmark_distance, landmark_velocity_error):
        mouth_before, mouth_after = metric(pred, target, "mouth").item(), metric(moved, target, "mouth").item()
        face_before, face_after = metric(pred, target, "face").item(), metric(moved, target, "face").item()
        assert mouth_after == pytest.approx(mouth_before, abs=1e-5)
        assert abs(face_after - face_before) > 0.1


def test_lmd_centres_each_set_and_velocity_does_not():
    """A constant shift of the whole prediction is no LMD error; a drift over time is a velocity error."""
    target = torch.rand(2, 5, 68, 2)
    shifted = target + 0.1
    assert landmark_distance(shifted, target, "face").item() == pytest.approx(0.0, abs=1e-4)
    assert landmark_velocity_error(shifted, target, "face").item() == pytest.approx(0.0, abs=1e-4)
    drifting = target + 0.01 * torch.arange(5).view(1, 5, 1, 1)  # 2.56 px per frame in x and y
    assert landmark_velocity_error(drifting, target, "mouth").item() == pytest.approx(2.56 * math.sqrt(2), rel=1e-4)


def test_landmark_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="points"):
        LandmarkDistance(points="lips")
    with pytest.raises(ValueError, match="shapes differ"):
        LandmarkDistance()(torch.rand(1, 3, 68, 2), torch.rand(1, 4, 68, 2))
    with pytest.raises(ValueError, match="mask"):
        LandmarkVelocityError()(torch.rand(1, 3, 68, 2), torch.rand(1, 3, 68, 2), torch.ones(1, 4))


# ---------------------------------------------------------------- stage 2


def test_frame_psnr_is_the_mean_of_per_image_psnr():
    metric = FramePSNR()
    everything = []
    for pred, target, _ in image_batches():
        reference = np_psnr_images(pred.numpy(), target.numpy())
        everything += reference
        assert metric(pred, target).item() == pytest.approx(mean(reference), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)


def test_mouth_psnr_crops_the_mouth_of_the_target_landmarks():
    metric = MouthPSNR()
    everything = []
    for pred, target, landmarks in image_batches(seed=3):
        crops_pred = np_mouth_crops(pred.numpy(), landmarks.numpy())
        crops_target = np_mouth_crops(target.numpy(), landmarks.numpy())
        assert crops_pred.shape[-2:] == (18, 18)  # round(0.375 * 48)
        reference = np_psnr_images(crops_pred, crops_target)
        everything += reference
        assert metric(pred, target, landmarks).item() == pytest.approx(mean(reference), rel=1e-5)
    assert metric.compute().item() == pytest.approx(mean(everything), rel=1e-5)


def test_frame_and_mouth_ssim_match_torchmetrics_on_the_same_crops():
    frame, mouth = FrameSSIM(), MouthSSIM()
    frame_values, mouth_values = [], []
    for pred, target, landmarks in image_batches(seed=4):
        per_frame = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
        crops_pred = torch.from_numpy(np_mouth_crops(pred.numpy(), landmarks.numpy()))
        crops_target = torch.from_numpy(np_mouth_crops(target.numpy(), landmarks.numpy()))
        per_mouth = structural_similarity_index_measure(crops_pred, crops_target, data_range=1.0, reduction="none")
        frame_values += per_frame.tolist()
        mouth_values += per_mouth.tolist()
        assert frame(pred, target).item() == pytest.approx(per_frame.mean().item(), rel=1e-5)
        assert mouth(pred, target, landmarks).item() == pytest.approx(per_mouth.mean().item(), rel=1e-5)
    assert frame.compute().item() == pytest.approx(mean(frame_values), rel=1e-5)
    assert mouth.compute().item() == pytest.approx(mean(mouth_values), rel=1e-5)


def test_mouth_metrics_see_only_the_mouth_box():
    """Noise outside the mouth box lowers the frame scores only; inside it, the mouth scores too."""
    _, target, landmarks = image_batches(seed=5)[0]
    x0, y0, x1, y1 = mouth_boxes(landmarks, 48).tolist()[0]
    noise = 0.2 * torch.randn_like(target)
    outside = (target + noise).clamp(0, 1)
    outside[..., y0:y1, x0:x1] = target[..., y0:y1, x0:x1]  # box of image 0 only
    assert FrameSSIM()(outside[:1], target[:1]).item() < 0.9
    assert MouthSSIM()(outside[:1], target[:1], landmarks[:1]).item() == pytest.approx(1.0, abs=1e-6)
    assert MouthPSNR()(outside[:1], target[:1], landmarks[:1]).item() == math.inf
    inside = target.clone()
    inside[..., y0:y1, x0:x1] = (target + noise)[..., y0:y1, x0:x1].clamp(0, 1)
    assert MouthSSIM()(inside[:1], target[:1], landmarks[:1]).item() < 0.9
    assert MouthPSNR()(inside[:1], target[:1], landmarks[:1]).item() < FramePSNR()(inside[:1], target[:1]).item()


def test_ssim_of_identical_images_is_one():
    pred, _, landmarks = image_batches()[1]
    assert FrameSSIM()(pred, pred).item() == pytest.approx(1.0, abs=1e-6)
    assert MouthSSIM()(pred, pred, landmarks).item() == pytest.approx(1.0, abs=1e-6)


def test_image_metrics_accept_video_batches():
    """(B, T, 3, H, W) with (B, T, 68, 2) landmarks is the same as the flattened frames."""
    pred, target, landmarks = image_batches()[1]
    video = lambda x: x[:2].unsqueeze(1).repeat_interleave(2, dim=1)  # noqa: E731  (2, 2, ...)
    assert MouthPSNR()(video(pred), video(target), video(landmarks)).item() == pytest.approx(
        MouthPSNR()(pred[:2], target[:2], landmarks[:2]).item(), rel=1e-6
    )


def test_mouth_boxes_are_fixed_size_centred_and_inside_the_image():
    landmarks = torch.full((3, 68, 2), 0.5)
    landmarks[1, 48:68] = torch.tensor([0.0, 1.0])  # mouth at the bottom-left corner
    landmarks[2, 48:60] = torch.tensor([0.25, 0.5])  # outer lips
    landmarks[2, 60:68] = torch.tensor([0.375, 0.75])  # inner lips: centre (0.3, 0.6)
    boxes = mouth_boxes(landmarks, 256)
    assert boxes.dtype == torch.int64
    assert boxes.tolist() == [
        [80, 80, 176, 176],  # 96 px box centred on (128, 128)
        [0, 160, 96, 256],  # shifted back inside, not shrunk
        [29, 106, 125, 202],  # centre (76.8, 153.6)
    ]
    crops = crop_boxes(torch.rand(3, 3, 256, 256), boxes)
    assert crops.shape == (3, 3, 96, 96)
    assert mouth_boxes(landmarks, (128, 256), box_fraction=0.5)[0].tolist() == [96, 32, 160, 96]


# ---------------------------------------------------------------- all metrics: reset


RESET_CASES = {
    "lmd": (lambda: LandmarkDistance("face"), "landmarks"),
    "velocity": (lambda: LandmarkVelocityError("face"), "landmarks"),
    "word": (WordAccuracy, "words"),
    "frame_psnr": (FramePSNR, "images"),
    "frame_ssim": (FrameSSIM, "images"),
    "mouth_psnr": (MouthPSNR, "mouth"),
    "mouth_ssim": (MouthSSIM, "mouth"),
}


def _reset_inputs(kind, seed):
    generator = torch.Generator().manual_seed(seed)
    if kind == "landmarks":
        return (torch.rand(2, 5, 68, 2, generator=generator), torch.rand(2, 5, 68, 2, generator=generator))
    if kind == "words":
        return (torch.randn(8, 4, generator=generator), torch.randint(0, 4, (8,), generator=generator))
    pred, target, landmarks = image_batches(seed)[0]
    return (pred, target) if kind == "images" else (pred, target, landmarks)


@pytest.mark.parametrize("name", list(RESET_CASES))
def test_reset_forgets_earlier_updates(name):
    build, kind = RESET_CASES[name]
    first, second = _reset_inputs(kind, 10), _reset_inputs(kind, 11)
    fresh = build()
    fresh.update(*second)
    metric = build()
    metric.update(*first)
    before = metric.compute().item()
    metric.reset()
    metric.update(*second)
    assert metric.compute().item() == pytest.approx(fresh.compute().item(), rel=1e-6)
    assert metric.compute().item() != pytest.approx(before, rel=1e-6)


# ---------------------------------------------------------------- DDP (2 processes, subprocess)


def _load_ddp_script():
    spec = importlib.util.spec_from_file_location("metrics_ddp", REPO / "tests" / "scripts" / "metrics_ddp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_metrics_under_two_process_ddp_equal_one_process(tmp_path):
    script = _load_ddp_script()
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "scripts" / "metrics_ddp.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    single = script.build_metrics()
    script.update_all(single, script.make_batches())
    expected = {name: metric.compute().item() for name, metric in single.items()}
    # Rank 0 alone (its 3 batches, no sync) gives other values: the comparison below means something.
    local = script.build_metrics()
    script.update_all(local, [script.make_batches()[i] for i in script.RANK_BATCHES[0]])
    assert all(abs(local[name].compute().item() - value) > 1e-5 for name, value in expected.items())
    for rank in range(script.WORLD_SIZE):
        synced = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert synced.keys() == expected.keys()
        for name, value in expected.items():
            assert synced[name] == pytest.approx(value, abs=1e-5, rel=1e-5), (rank, name)
