"""The command line as a user meets it: bad input is one line on stderr and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from talkface import SAMPLE_RATE
from talkface.cli import main
from talkface.media import write_mp4
from tests.helpers.media_factory import numbered_frames, tone


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkface.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def bad_files(tmp_path):
    good = write_mp4(tmp_path / "good.mp4", numbered_frames(50), tone(2.0, SAMPLE_RATE))
    data = good.read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("just text\n")
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["truncated.mp4", "empty.mp4", "notes.mp4", "missing.mp4"])
def test_bad_video_from_the_command_line_is_one_line_and_exit_2(bad_files, name):
    result = run_cli("inspect", str(bad_files / name))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_inspect_describes_a_good_video(bad_files, capsys):
    assert main(["inspect", str(bad_files / "good.mp4")]) == 0
    out = capsys.readouterr().out
    assert "50 frames at 25 fps" in out and "64x64" in out and "audio 2.000 s" in out


def test_unknown_subcommand_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code != 0
