"""Measure the lip sync of a video: the audio-video offset, the confidence, LSE-D and LSE-C."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from talkface.errors import TalkfaceError
from talkface.faces import BACKENDS

EPILOG = """\
The face is found and aligned as `talkface prepare` does it, then a lip-sync expert compares
every 0.2 s of lower face with the sound over offsets of up to --max-offset frames either way.
The offset is where sound and lips agree best: positive when the sound comes late (delay the
video, or advance the audio, by that much to fix it). Confidence (= LSE-C) is how clearly they
agree there: low for a face that does not speak the sound. LSE-D is the distance at the best
offset (lower is better). Both depend on the expert, which every result names.

examples:
  talkface sync talk.mp4                          # the video against its own soundtrack
  talkface sync talk.mp4 --audio dub_fr.wav --audio dub_de.wav
  talkface sync talk.mp4 --syncnet syncnet_v2.model --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("video", type=Path, metavar="VIDEO", help="a video with one speaking face (mp4, mov, ...)")
    parser.add_argument(
        "--audio",
        type=Path,
        action="append",
        metavar="SPEECH",
        help="measure this recording instead of the video's own sound (repeat to compare several)",
    )
    parser.add_argument(
        "--expert",
        metavar="PATH",
        help="a sync expert: .ckpt of `talkface fit -c sync/real` or .safetensors (default: the released one)",
    )
    parser.add_argument(
        "--syncnet",
        metavar="syncnet_v2.model",
        help="measure with the official SyncNet v2 instead, from its weights file",
    )
    parser.add_argument("--max-offset", type=int, default=15, help="offsets tried either way, in frames (default 15)")
    parser.add_argument("--backend", choices=BACKENDS, default="dlib", help="face landmark detector (default dlib)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for machines)")


def check_arguments(args: argparse.Namespace) -> None:
    """What can be known wrong before a model loads or a frame is decoded."""
    from talkface.checks import check_number

    if args.expert and args.syncnet:
        raise TalkfaceError("give --expert or --syncnet, not both")
    check_number("--max-offset", args.max_offset, 1, whole=True)
    for path in [args.video, *(args.audio or [])]:
        if not path.is_file():
            raise TalkfaceError(f"{path}: no such file")
    for option, path in (("--expert", args.expert), ("--syncnet", args.syncnet)):
        if path and not Path(path).is_file():
            raise TalkfaceError(f"{option} {path}: no such file")
    if not args.audio and not _has_audio(args.video):
        raise TalkfaceError(f"{args.video}: has no audio stream; give the speech with --audio SPEECH")


def _has_audio(path: Path) -> bool:
    from talkface.media.opening import open_media

    with open_media(path) as container:
        return bool(container.streams.audio)


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    from talkface.media.audio_io import read_audio
    from talkface.sync.experts import load_expert
    from talkface.sync.measure import SAMPLE_RATE, audio_under, measure, track_face

    recordings = [(str(path), read_audio(path, SAMPLE_RATE)) for path in args.audio or []]
    expert = load_expert(args.expert, args.syncnet)
    track = track_face(args.video, expert.crop_size, args.backend, audio=recordings[0][1] if recordings else None)
    if recordings:
        results = [
            measure(expert, track, audio_under(track, audio), label, args.max_offset) for label, audio in recordings
        ]
    else:
        results = [measure(expert, track, track.audio, "(its own audio)", args.max_offset)]
    if args.json:
        print(
            json.dumps(
                {
                    "video": str(args.video),
                    "frames": len(track.frames),
                    "expert": expert.name,
                    "results": [r.to_dict() for r in results],
                }
            )
        )
        return 0
    print(f"{args.video}: {len(track.frames)} frames with a face, measured by {expert.name}")
    for result in results:
        late = (
            "the sound comes late"
            if result.offset_frames > 0
            else "the sound comes early"
            if result.offset_frames < 0
            else "in sync"
        )
        print(f"  {result.audio}")
        print(f"    offset:             {result.offset_frames:+d} frames ({result.offset_ms:+.0f} ms; {late})")
        print(f"    confidence (LSE-C): {result.lse_c:.3f}")
        print(f"    LSE-D:              {result.lse_d:.3f}")
    return 0
