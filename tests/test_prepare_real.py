"""Preparation on real clips that used to be skipped: faces that fade in, tilted heads, no face.

Real media only (the corpus and the real media set beside the repository); each test prepares
one clip or tracks one clip's frames, never the whole corpus.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkface.errors import NoFaceError
from talkface.faces import get_extractor
from talkface.media import read_video
from talkface.prepare.clip_pipeline import PipelineSettings, process_source
from talkface.prepare.samples import cut_samples
from talkface.prepare.sources import Source, parse_grid_name, read_grid_align
from talkface.prepare.tracking import roll, track_landmarks
from tests.helpers.media_factory import tone, write_mp4_file
from tests.helpers.real_data import CORPUS, REAL_DATA, needs_corpus, needs_real_data

FADE_IN_CLIP = CORPUS / "grid_s1" / "s1" / "bbizzn.mp4"  # fades in from grey over ~12 frames
UPRIGHT_CLIP = REAL_DATA / "videos" / "lrs2_00001.mp4"  # 160x160 LRS2-style crop


@pytest.fixture(scope="module")
def extractor():
    return get_extractor("dlib")


def assert_track_plausible(landmarks: np.ndarray, frames: np.ndarray, width_range: tuple[float, float]) -> None:
    """Every point of every frame inside the frame; face width (jaw span) in `width_range`
    in every frame (no fit that collapsed or blew up); brows above mouth above chin."""
    height, width = frames.shape[1:3]
    assert np.isfinite(landmarks).all()
    assert (landmarks[..., 0] >= 0).all() and (landmarks[..., 0] < width).all()
    assert (landmarks[..., 1] >= 0).all() and (landmarks[..., 1] < height).all()
    jaw = np.linalg.norm(landmarks[:, 16] - landmarks[:, 0], axis=1)
    assert width_range[0] < jaw.min() and jaw.max() < width_range[1], (jaw.min(), jaw.max())


def rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
    height, width = frames.shape[1:3]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return np.stack([cv2.warpAffine(f, matrix, (width, height), borderMode=cv2.BORDER_REFLECT) for f in frames])


@pytest.mark.slow
@needs_corpus()
def test_grid_clip_fading_in_from_grey_is_prepared(extractor):
    """Skipped before as 'no face found in the first 5 frames': the face appears at ~frame 12."""
    frames = read_video(FADE_IN_CLIP, with_audio=False).frames
    assert not any(extractor.detect(frames[t]) for t in range(5))  # the old search saw no face
    source = Source(id="s1/bbizzn", path=FADE_IN_CLIP, split="train")
    video = process_source(source, extractor, PipelineSettings())
    assert video.num_frames == len(frames) == 75
    assert video.lost_frames <= 0.2 * len(frames)
    # Aligned crop: brows, eyes, nose and mouth inside the 128 px crop (the chin may hang below it).
    inner = video.landmarks[:, 17:]
    assert 0 < inner.min() and inner.max() < 128
    # In the source frames (tracked forwards and backwards from the first face): the speaker's
    # face is ~105 px wide (jaw span) once visible; no frame's fit collapses or explodes.
    image_landmarks = track_landmarks(frames, extractor, "bbizzn").landmarks
    assert_track_plausible(image_landmarks, frames, (80, 135))


@pytest.mark.slow
@needs_corpus()
def test_grid_clip_with_corrupt_first_second_keeps_the_part_with_a_face(extractor):
    """pbio7a's first ~30 frames are grey, then smeared decoding garbage (no face a person can
    see); the face shows from frame ~30 on. Skipped before ('no face found in the first 5
    frames', then 'face lost in 29 of 75 frames'); now the frames before the face are cut, with
    their audio, and the word labels stay on the words' own times."""
    path = CORPUS / "grid_s1" / "s1" / "pbio7a.mp4"
    spans = read_grid_align(CORPUS / "grid_s1" / "align" / "pbio7a.align")
    source = Source(id="s1/pbio7a", path=path, split="train", words=parse_grid_name("pbio7a"), word_spans=spans)
    video = process_source(source, extractor, PipelineSettings())
    first = video.first_frame
    assert 20 <= first <= 36 and video.num_frames == 75 - first
    assert video.lost_frames <= 0.2 * video.num_frames
    inner = video.landmarks[:, 17:]
    assert 0 < inner.min() and inner.max() < 128
    # The audio is the source's, from the first kept frame on.
    source_audio = read_video(path).audio
    kept = source_audio[first * 640 : (first + video.num_frames) * 640]
    np.testing.assert_allclose(video.audio[: len(kept)] / 32767, kept, atol=2e-4)
    # Word labels: a window is labelled with the word under its centre, in the source's time.
    vocabulary = sorted({word for word, _, _ in spans})
    samples = cut_samples(source, video, 9, 9, vocabulary, 128, 4, 7)
    assert len(samples) == video.num_frames // 9 and sum(s["word"] >= 0 for s in samples) >= 2
    for sample in samples:
        start = int(sample["id"].split("#")[1]) + first
        middle = (start + 4.5) / 25
        expected = next((w for w, begin, end in spans if begin <= middle < end), None)
        assert sample["word"] == (vocabulary.index(expected) if expected else -1)


@pytest.mark.slow
@needs_real_data()
@pytest.mark.parametrize("degrees", [-45, 45])
def test_tilted_head_in_lrs2_crop_is_tracked(extractor, degrees):
    """A 160x160 LRS2-style crop with the head rolled 45 deg: HOG finds no face, the CNN fallback
    does, and the upright fit keeps the points on the face in every frame."""
    upright = read_video(UPRIGHT_CLIP, with_audio=False).frames[:60]
    tilted = rotate(upright, degrees)
    assert not any(extractor.detect(f) for f in tilted[:5])  # precondition: HOG misses the tilted head
    reference = track_landmarks(upright, extractor, "upright").landmarks
    track = track_landmarks(tilted, extractor, "tilted")
    assert track.lost <= 0.1 * len(tilted)
    upright_jaw = np.linalg.norm(reference[:, 16] - reference[:, 0], axis=1).mean()
    matrix = cv2.getRotationMatrix2D((80, 80), degrees, 1.0)
    expected = reference @ matrix[:, :2].T + matrix[:, 2]
    # The CNN fallback finds the tilted face of frame 0, centred on it.
    boxes = extractor.detect_fallback(tilted[0])
    assert len(boxes) == 1
    left, top, right, bottom = boxes[0]
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    assert np.linalg.norm(centre - expected[0].mean(axis=0)) < 0.25 * upright_jaw
    assert_track_plausible(track.landmarks, tilted, (0.75 * upright_jaw, 1.3 * upright_jaw))
    # cv2's positive angle turns the picture anticlockwise: the eye line tilts by -degrees.
    rolls = np.array([roll(p) for p in track.landmarks])
    assert np.abs(np.median(rolls) + degrees) < 12, np.median(rolls)
    # The points follow the face: rotating the upright clip's points gives the tilted ones.
    error = np.linalg.norm(track.landmarks - expected, axis=2).mean(axis=1) / upright_jaw
    assert np.median(error) < 0.05 and np.percentile(error, 90) < 0.1, error


@pytest.mark.slow
@needs_corpus()
def test_fallback_detector_finds_the_small_face_of_a_wide_shot(extractor):
    """face2face_obama.mp4: 1280x720, the face a small part of the frame."""
    import av

    with av.open(str(CORPUS / "speakers" / "face2face_obama.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (720, 1280, 3)
    hog = extractor.detect(frame)
    cnn = extractor.detect_fallback(frame)
    assert len(hog) >= 1 and len(cnn) >= 1
    (hl, ht, hr, hb), (cl, ct, cr, cb) = hog[0], cnn[0]
    overlap = max(0, min(hr, cr) - max(hl, cl)) * max(0, min(hb, cb) - max(ht, ct))
    union = (hr - hl) * (hb - ht) + (cr - cl) * (cb - ct) - overlap
    assert overlap / union > 0.4  # the same face
    assert 100 < cr - cl < 300  # a small face in a 1280 px frame, in full-frame pixels
    points = extractor.fit(frame, cnn[0])
    assert (points[:, 0] > cl - 20).all() and (points[:, 0] < cr + 20).all()


def test_no_face_clip_is_still_skipped_with_its_reason(tmp_path, extractor):
    """A grey clip with speech-like audio: every search (fast, spread, fallback) finds nothing."""
    frames = np.full((30, 160, 160, 3), 120, np.uint8)
    frames[:, 40:120, 40:120] = 90  # a flat square: edges but no face
    path = write_mp4_file(tmp_path / "wall.mp4", frames, tone(30 / 25, 16000, 220, 0.3))
    source = Source(id="wall", path=path, split="train")
    with pytest.raises(NoFaceError, match=r"no face found in wall: searched 15 of its 30 frames") as error:
        process_source(source, extractor, PipelineSettings())
    assert "fallback detector" in str(error.value)


@needs_corpus()
def test_face_found_at_frame_zero_runs_no_fallback(extractor):
    """The fast path: a GRID clip whose face HOG finds in frame 0 costs one detection, as before."""
    frames = read_video(CORPUS / "grid_s1" / "s1" / "bbaf2n.mp4", with_audio=False).frames
    track = track_landmarks(frames, extractor, "bbaf2n")
    assert track.detections == 1 and track.fallback_detections == 0 and track.lost == 0
    assert_track_plausible(track.landmarks, frames, (80, 135))
