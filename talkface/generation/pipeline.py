"""Photo + speech → talking-face mp4, streaming: memory stays flat however long the speech is.

Audio is decoded in chunks; each chunk becomes feature windows (and phone windows, for a stage 1
that reads them; exactly as in training), then
landmarks (the LSTM's state carried from chunk to chunk), then frames rendered a few at a time,
pasted into the photo and encoded at once. Nothing but the current chunk is ever held. The first
chunk is short (FIRST_CHUNK_FRAMES), so the first frame is encoded a fraction of a second after
the models are loaded (what a `talkface serve` user waits for); only the audio check before it
reads the whole file (one decoding pass, ~5 ms per 10 s of wav). Chunking changes no number. The mp4 is written to a temporary file and moved into place only when
complete, so a failure or Ctrl-C leaves no partial output.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lightning_modules import FaceGenModule, LandmarkModule
from talkface import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from talkface.audio.input_stream import StageOneInputs
from talkface.audio.phones import BLOCK, load_recognizer
from talkface.checks import check_device_name, check_feather, check_max_side
from talkface.errors import MediaError, TalkfaceError
from talkface.faces.paste import FacePaster
from talkface.faces.warp_paste import WarpPaster
from talkface.generation.checkpoints import LoadedModel, feature_config, load_stage
from talkface.generation.face_finder import FaceFinder
from talkface.generation.face_input import FaceInput, align_face, read_photo
from talkface.generation.precision import dtype_for, for_generation, precision_of
from talkface.media.audio_stream import probe_audio, stream_audio
from talkface.media.mp4_writer import Mp4Writer
from talkface.networks.landmark_stream import LandmarkStream
from talkface.networks.pixel_range import to_uint8, to_unit

MIN_SECONDS = 0.2  # 5 frames
# Frames of audio in the first chunk: with the 7-frame feature context (3 frames ahead) 8 give the
# first 4 frames; the chunks after it are `chunk_seconds` long.
FIRST_CHUNK_FRAMES = 8
SILENCE_PEAK = 10 ** (-60 / 20)  # -60 dBFS


@dataclass
class GenerationResult:
    path: Path
    frames: int
    audio_seconds: float
    seconds: float  # wall time from the call to the finished file (loading the models included)
    first_frame_seconds: float  # wall time until the first frame was encoded (loading included)
    size: tuple[int, int]  # width, height
    notes: list[str] = field(default_factory=list)
    load_seconds: float = 0.0  # of `seconds`, loading the checkpoints and the face landmark model
    precision: str = "fp32"  # what stage 2's convolutions ran in: fp32 or bf16

    @property
    def first_frame_after_load_seconds(self) -> float:
        """What a user waits for once the models are in memory (`talkface serve` after its start)."""
        return self.first_frame_seconds - self.load_seconds

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def realtime_factor(self) -> float:
        """Seconds of work per second of video (< 1: faster than real time)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


def generate(
    image: str | Path | np.ndarray,
    audio: str | Path,
    landmark_ckpt: str | Path | LandmarkModule | LoadedModel,
    generator_ckpt: str | Path | FaceGenModule | LoadedModel,
    out: str | Path,
    *,
    paste_back: bool = True,
    feather: float = 0.1,
    backend: str = "dlib",
    max_side: int = 1024,
    chunk_seconds: float = 2.0,
    render_batch: int = 8,
    device: str = "cpu",
    precision: str = "auto",
    mouth_from_photo: bool | None = None,
    mouth_teeth: float | None = None,
    progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerationResult:
    """Make `out` (H.264 + AAC mp4, 25 fps) of the face in `image` speaking `audio`.

    `landmark_ckpt` / `generator_ckpt` are checkpoint paths (stage 1 / stage 2) or loaded modules
    (a `LoadedModel` from `load_model` also keeps its data facts, e.g. the audio feature settings).
    With `paste_back` (default) the frames are the whole photo with the generated face blended in
    through a feathered edge of `feather` × crop size; without, the aligned face crop itself.
    `on_progress(done, total)` is called after every encoded frame (a web page's progress bar).
    `precision` (auto, fp32, bf16): what stage 2's convolutions run in; auto takes bf16 where the
    device has it natively (`talkface.generation.precision`). `mouth_from_photo` (a warping
    generator): keep the photo's own mouth inside (a smile's teeth) where it is already open
    (None: as the model says; `UNetGenerator`). `mouth_teeth` (a generator with a mouth shade):
    paint upper teeth into the opening mouth instead of black, up to this many inner-lip gaps deep
    in a wide-open mouth (0: black; None: as the model says; `talkface.networks.mouth_inside`).
    """
    started = time.perf_counter()
    check_feather(feather, "feather")
    check_max_side(max_side, "max_side")
    check_device_name(str(device), "device")
    torch_device = torch.device(device)
    dtype = dtype_for(precision, torch_device)
    summary = check_audio(audio)
    photo = read_photo(image, max_side)
    finder = FaceFinder(photo, backend)  # loads the landmark model beside the checkpoints
    try:
        loading = time.perf_counter()
        landmark_model, facts = _stage(landmark_ckpt, LandmarkModule)
        face_model, _ = _stage(generator_ckpt, FaceGenModule)
        face_model = for_generation(face_model, dtype, owned=isinstance(generator_ckpt, (str, Path)))
        finder.load_model()  # in this process when not in the background: once per process
        phones = landmark_model.reads_phones
        if phones:
            load_recognizer()  # the phone recogniser's acoustic model, likewise
        loaded_here = time.perf_counter()
        features = feature_config(landmark_model, facts)
        crop_size = int(face_model.hparams.image_size)
        landmark_model.to(torch_device)
        face_model.to(torch_device)
        total_frames = math.ceil(summary.samples / SAMPLES_PER_FRAME)
        # A warping generator is applied at the photo's resolution (its field and mask, the photo's pixels).
        at_photo_resolution = paste_back and _warps(face_model)
        height, width = photo.image.shape[:2] if paste_back else (crop_size, crop_size)
        inputs = StageOneInputs(total_frames, features, phones)
        chunk = max(1, round(chunk_seconds * FPS)) * SAMPLES_PER_FRAME
        first = BLOCK if phones else FIRST_CHUNK_FRAMES  # phones come a decoding block at a time
        chunks = audio_chunks(audio, first * SAMPLES_PER_FRAME, chunk)
        first_frame = None
        written = 0
        with Mp4Writer(out, width, height, FPS, SAMPLE_RATE) as writer:
            # While the face is still being found, the audio becomes stage-1 inputs ahead of time.
            ahead = []
            while not finder.ready() and (samples := next(chunks, None)) is not None:
                writer.write_audio(samples)
                ahead.append(inputs.push(samples))
            points, notes = finder.result()
            # Loading is over when both the checkpoints and the landmark model are in memory.
            loaded = max(loaded_here, finder.started + finder.model_seconds) - loading
            face = align_face(photo, points, notes, crop_size)
            paster_type = WarpPaster if at_photo_resolution else FacePaster
            paster = paster_type(face.image, face.matrix, crop_size, feather) if paste_back else None
            renderer = _Renderer(
                face_model, face, torch_device, render_batch, at_photo_resolution, mouth_from_photo, mouth_teeth
            )
            landmarks = LandmarkStream(landmark_model.generator, torch.from_numpy(face.landmarks).to(torch_device))
            bar = tqdm(total=total_frames, unit="frame", desc="generating", disable=not progress, dynamic_ncols=True)

            def write(points: torch.Tensor) -> None:
                nonlocal first_frame, written
                for frame in renderer.frames(points):
                    if at_photo_resolution:
                        frame = paster.paste_warp(*frame)
                    elif paster:
                        frame = paster.paste(frame)
                    writer.write_frame(frame)
                    written += 1
                    first_frame = first_frame or time.perf_counter() - started
                    bar.update(1)
                    if on_progress is not None:
                        on_progress(written, total_frames)

            with bar:
                for pushed in ahead:
                    write(landmarks.push(*_on(torch_device, *pushed)))
                for samples in chunks:
                    writer.write_audio(samples)
                    write(landmarks.push(*_on(torch_device, *inputs.push(samples))))
                write(landmarks.push(*_on(torch_device, *inputs.finish())))
                write(landmarks.finish())
            if written != total_frames:  # a bug, not a user error: never leave a short video behind
                raise RuntimeError(f"made {written} frames for {total_frames} frames of audio")
    finally:
        finder.close()
    return GenerationResult(
        Path(out),
        written,
        summary.seconds,
        time.perf_counter() - started,
        first_frame or 0.0,
        (width, height),
        face.notes,
        loaded,
        precision_of(face_model),
    )


def audio_chunks(audio: str | Path, first: int, rest: int):
    """The audio's first `first` samples on their own, then chunks of at least `rest` samples."""
    pending, size, wanted = [], 0, first
    for piece in stream_audio(audio, SAMPLE_RATE, min(first, rest)):
        pending.append(piece)
        size += len(piece)
        if size >= wanted:
            yield np.concatenate(pending)
            pending, size, wanted = [], 0, rest
    if pending:
        yield np.concatenate(pending)


def check_audio(audio: str | Path):
    """Refuse audio that cannot make a video, before any work or output."""
    summary = probe_audio(audio)
    if summary.seconds < MIN_SECONDS:
        raise MediaError(
            f"{audio}: the audio is too short ({summary.seconds:.2f} s); at least {MIN_SECONDS} s is needed"
        )
    if summary.peak < SILENCE_PEAK:
        raise MediaError(f"{audio}: the audio is silent (peak {summary.peak:.1e}); give a speech recording")
    return summary


def _stage(source, expected: type):
    facts = {}
    if isinstance(source, LoadedModel):  # loaded once with its facts (talkface serve)
        source, facts = source.model, source.facts
    if isinstance(source, expected):
        return source.eval(), facts
    if isinstance(source, torch.nn.Module):
        raise TalkfaceError(f"expected a {expected.__name__}, got a {type(source).__name__}")
    return load_stage(source, expected)


def _on(device: torch.device, windows: torch.Tensor, phones: torch.Tensor | None):
    return windows.to(device), None if phones is None else phones.to(device)


def _warps(model: FaceGenModule) -> bool:
    """Whether the generator's output can be applied at photo resolution (a warp and a blend mask)."""
    hparams = model.hparams
    return bool(hparams.get("warp_reference")) and hparams.blend_with_reference and not hparams.use_previous_frame


class _Renderer:
    """Stage 2 on a stream of landmarks: a few frames per forward pass, the previous frame carried.

    With `parts`, yields (field, generated, mask) per frame for `WarpPaster` instead of crops.
    """

    def __init__(
        self,
        model: FaceGenModule,
        face: FaceInput,
        device: torch.device,
        batch: int,
        parts: bool,
        mouth_from_photo: bool | None = None,
        mouth_teeth: float | None = None,
    ) -> None:
        self.model = model
        self.mouth_from_photo = mouth_from_photo
        self.mouth_teeth = mouth_teeth
        self.batch = batch
        self.parts = parts
        self.reference = to_unit(torch.from_numpy(face.crop).permute(2, 0, 1)).to(device)
        self.reference_landmarks = torch.from_numpy(face.landmarks).to(device)
        self.previous = None
        self.started = False

    @torch.no_grad()
    def frames(self, landmarks: torch.Tensor):
        """Yields (S, S, 3) uint8 frames for (T, 68, 2) normalised landmarks."""
        start = 0
        while start < len(landmarks):
            size = self.batch if self.started else 1  # the very first frame alone: the user waits for it
            self.started = True
            part = landmarks[start : start + size]
            start += size
            if self.parts:
                yield from self._parts(part)
                continue
            images = self.model.render_sequence(
                self.reference, self.reference_landmarks, part, self.previous, self.mouth_from_photo, self.mouth_teeth
            )
            self.previous = images[-1:] if self.model.hparams.use_previous_frame else None
            yield from to_uint8(images).permute(0, 2, 3, 1).cpu().numpy()

    def _parts(self, landmarks: torch.Tensor):
        count = len(landmarks)
        out = self.model.generator.generate(  # by keyword: the network's order is not the module's
            self.reference[None].expand(count, -1, -1, -1),
            target_landmarks=landmarks,
            reference_landmarks=self.reference_landmarks[None].expand(count, -1, -1),
            mouth_from_photo=self.mouth_from_photo,
            mouth_teeth=self.mouth_teeth,
        )
        fields = out.field.permute(0, 2, 3, 1).float().cpu().numpy()
        generated = to_uint8(out.generated).permute(0, 2, 3, 1).cpu().numpy()
        masks = out.mask[:, 0].float().cpu().numpy()
        yield from zip(fields, generated, masks, strict=True)
