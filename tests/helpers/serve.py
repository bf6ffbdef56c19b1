"""`talkface serve` in tests: a real server process on a
free local port that is always stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.real_data import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path
    tmp: Path  # the server's TMPDIR: its job folders are made in it

    def peak_rss_kb(self) -> int:
        """The server process's peak resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")


@contextlib.contextmanager
def running_server(files: dict, log: Path, *options: str, timeout: float = 120) -> Iterator[Server]:
    """`talkface serve` with the test models, ready (GET /healthz answers) when this yields."""
    port = free_port()
    args = ["--landmark-ckpt", str(files["landmark"]), "--generator-ckpt", str(files["generator"]), "--port", str(port)]
    tmp = log.parent / f"tmp-{port}"
    tmp.mkdir()
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "talkface.cli", "serve", *args, *options],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, tmp)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"talkface serve exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"talkface serve did not answer within {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> int:
    """SIGTERM (the graceful way), then SIGKILL if it does not end within 20 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
