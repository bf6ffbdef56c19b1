"""talkface as a user gets it from `pip install .` (not editable): the demo from an empty folder.

The wheel is built from this tree and installed with its dependencies taken from the test's own
environment (a .pth file), so the check is about what the package ships (recipes, templates,
word lists), not about downloading torch a second time.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from talkface.media import read_video

REPO = Path(__file__).resolve().parents[1]
# Top-level folders that are not part of the source (configs/data/ is: only the top level counts).
NOT_SOURCE = {
    ".git",
    ".venv",
    "build",
    "dist",
    "talkface.egg-info",
    "data",
    "runs",
    ".pytest_cache",
    ".ruff_cache",
    "wandb",
}


def _not_source(folder: str, names: list[str]) -> set[str]:
    top = Path(folder).resolve() == REPO
    return {name for name in names if name == "__pycache__" or (top and name in NOT_SOURCE)}


def _run(command: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"WANDB_MODE": "disabled"}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a new virtual environment holding talkface installed from a wheel of this tree."""
    root = tmp_path_factory.mktemp("installed")
    # Built from a copy: building in place would leave build/ and *.egg-info in the source tree.
    source = shutil.copytree(REPO, root / "source", ignore=_not_source)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(root / "dist")], root
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((root / "dist").glob("talkface-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = next(venv.glob("lib/python*/site-packages"))
    (target / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    done = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return venv / "bin"


@pytest.mark.slow
def test_the_installed_package_carries_its_recipes(installed, tmp_path):
    where = _run(
        [
            str(installed / "python"),
            "-c",
            "import configs, talkface; print(configs.__file__); print(talkface.__file__)",
        ],
        tmp_path,
    )
    assert where.returncode == 0, where.stderr[-2000:]
    for line in where.stdout.split():
        assert not Path(line).resolve().is_relative_to(REPO), f"imported from the source tree: {line}"
    shown = _run([str(installed / "talkface"), "fit", "-c", "generator/sample", "--print_config"], tmp_path)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "adaptive_reconstruction" in shown.stdout and "VideoSamples" in shown.stdout


@pytest.mark.slow
def test_quick_demo_from_an_empty_folder_with_the_installed_package(installed, tmp_path):
    """`talkface demo --quick`, the whole framework from nothing, as a new user runs it."""
    out = tmp_path / "demo"
    result = _run([str(installed / "talkface"), "demo", "--quick", "--out", "demo"], tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for step in range(1, 9):
        assert f"[{step}/8]" in result.stdout
    assert "mouth LMD" in result.stdout and "mouth PSNR" in result.stdout
    # The freshly trained models' video, and the released models' (shipped in the wheel) beside it.
    for name in ("talking.mp4", "talking_released.mp4"):
        clip = read_video(out / name)
        assert len(clip.frames) > 25 and clip.frames.shape[1:] == (512, 512, 3)
        assert abs(len(clip.audio) / 16000 - len(clip.frames) / 25) <= 1 / 25
    assert (out / "demo_metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]  # nothing written outside --out
