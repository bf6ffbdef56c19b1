"""`talkface prepare --av-offsets`: a recording whose sound comes late is moved into step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from litdata import StreamingDataset

from talkface.cli import main
from talkface.errors import TalkfaceError
from talkface.prepare import PrepareSettings, prepare_dataset
from talkface.prepare.av_offsets import AvOffsetTable
from talkface.prepare.clip_pipeline import in_step
from tests.helpers.media_factory import face_clip

SAMPLES_PER_FRAME = 640


def write_table(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_late_sound_is_advanced_and_early_sound_delayed():
    speech = np.arange(10 * SAMPLES_PER_FRAME, dtype=np.float32)
    late = in_step(speech, 3, SAMPLES_PER_FRAME)
    assert late[0] == 3 * SAMPLES_PER_FRAME and len(late) == 7 * SAMPLES_PER_FRAME
    early = in_step(speech, -2, SAMPLES_PER_FRAME)
    assert not early[: 2 * SAMPLES_PER_FRAME].any() and early[2 * SAMPLES_PER_FRAME] == 0 and early[-1] == speech[-1]
    assert in_step(speech, 0, SAMPLES_PER_FRAME) is speech


def test_rows_match_like_identities_and_unnamed_clips_keep_their_sound(tmp_path):
    table = AvOffsetTable.read(write_table(tmp_path / "o.csv", "file,offset_frames\na.mp4,3\nsub/*.mp4,-2\n"))
    assert table.offset(["a.mp4"]) == 3
    assert table.offset(["sub/b.mp4"]) == -2
    assert table.offset(["c.mp4"]) == 0


@pytest.mark.parametrize(
    "text, says",
    [
        ("file,offset\na.mp4,3\n", "file,offset_frames"),
        ("file,offset_frames\na.mp4,three\n", "whole number"),
        ("file,offset_frames\na.mp4,400\n", "within"),
    ],
)
def test_a_bad_table_is_one_line_before_any_clip_is_read(tmp_path, capsys, text, says):
    src = tmp_path / "clips"
    src.mkdir()
    table = write_table(tmp_path / "offsets.csv", text)
    with pytest.raises(TalkfaceError, match=says):
        AvOffsetTable.read(table)
    code = main(["prepare", "--src", str(src), "--out", str(tmp_path / "out"), "--av-offsets", str(table)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and says in err[0]
    assert not (tmp_path / "out").exists()


def test_prepared_audio_of_a_late_clip_starts_that_many_frames_later(tmp_path, capsys):
    src = tmp_path / "clips"
    src.mkdir()
    face_clip(src / "late.mp4", frames=40, seed=1)
    table = write_table(tmp_path / "offsets.csv", "file,offset_frames\nlate.mp4,3\n")

    def audio(out: Path, offsets: Path | None) -> np.ndarray:
        prepare_dataset(
            PrepareSettings(
                src=src, out=out, layout="folder", split_ratios=(1, 0, 0), av_offsets=offsets, workers=1, progress=False
            )
        )
        return StreamingDataset(str(out / "train" / "light"))[0]["audio"]

    as_recorded, in_step_audio = audio(tmp_path / "plain", None), audio(tmp_path / "shifted", table)
    assert "no clip of" not in capsys.readouterr().err
    shift = 3 * SAMPLES_PER_FRAME
    assert np.array_equal(in_step_audio[:-shift], as_recorded[shift:])
    assert not np.array_equal(in_step_audio, as_recorded)
    # The offsets are part of the folder's settings: the same --out with another table is refused.
    with pytest.raises(TalkfaceError, match="av_offsets"):
        audio(tmp_path / "shifted", None)


def test_a_row_that_names_no_clip_is_reported_and_the_run_goes_on(tmp_path, capsys):
    src = tmp_path / "clips"
    src.mkdir()
    face_clip(src / "late.mp4", frames=30, seed=2)
    table = write_table(tmp_path / "offsets.csv", "file,offset_frames\nlate.mp4,1\nlaet.mp4,2\n")
    settings = PrepareSettings(
        src=src,
        out=tmp_path / "out",
        layout="folder",
        split_ratios=(1, 0, 0),
        av_offsets=table,
        workers=1,
        progress=False,
    )
    assert prepare_dataset(settings).total_samples == 1
    err = capsys.readouterr().err
    assert "no clip of" in err and "laet.mp4" in err and "late.mp4;" not in err
