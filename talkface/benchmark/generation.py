"""Generation speed and memory, each run in a fresh process (so peak memory is that run's own).

Weights do not change the cost of a forward pass, so the models are the recipes' architectures,
freshly initialised and saved as checkpoints: the run goes through the same loading path as
`talkface generate`, from the audio file to the finished mp4.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lightning_modules import FaceGenModule, LandmarkModule
from talkface.generation.checkpoints import save_untrained
from talkface.media.wav_writer import write_wav

# Peak memory is read from VmHWM (this process's own high-water mark): getrusage's ru_maxrss
# would also count the parent's memory, which Linux carries across fork + exec.
PROBE = """
import json, resource, sys
from talkface.generation import generate

def peak_mib():
    try:
        return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    except OSError:  # no /proc (macOS): ru_maxrss, in bytes there
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

r = generate(*sys.argv[1:6], device=sys.argv[6])
print(json.dumps({"frames": r.frames, "audio_seconds": r.audio_seconds, "seconds": r.seconds,
                  "frames_per_second": r.fps, "realtime_factor": r.realtime_factor,
                  "first_frame_seconds": r.first_frame_seconds, "size": r.size,
                  "peak_rss_mib": peak_mib(), "load_seconds": r.load_seconds,
                  "first_frame_after_load_seconds": r.first_frame_after_load_seconds,
                  "precision": r.precision}))
"""


def save_models(folder: Path, image_size: int, num_words: int = 20) -> tuple[Path, Path]:
    torch.manual_seed(0)
    landmark = LandmarkModule(num_words=num_words, hidden=128, audio_dim=128, layers=2)
    generator = FaceGenModule(image_size=image_size, base_channels=16, depth=4)
    vocabulary = [f"W{i}" for i in range(num_words)]
    return (
        save_untrained(landmark, folder / "landmark.ckpt", image_size, vocabulary),
        save_untrained(generator, folder / f"generator_{image_size}.ckpt", image_size, vocabulary),
    )


def speech_file(folder: Path, seconds: float, source: np.ndarray) -> Path:
    """`seconds` of speech made by repeating `source` (16 kHz mono), as a wav file."""
    count = int(seconds * 16000)
    samples = np.tile(source, int(np.ceil(count / len(source))))[:count]
    path = folder / f"speech_{int(seconds)}s.wav"
    write_wav(path, samples, 16000)
    return path


def run_generation(image: Path, audio: Path, landmark: Path, generator: Path, out: Path, device: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(image), str(audio), str(landmark), str(generator), str(out), device],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"generation failed: {result.stderr.strip().splitlines()[-1:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
