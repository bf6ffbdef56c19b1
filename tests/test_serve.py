"""`talkface serve`: its command line, and its HTTP API tested against a real server process."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import pytest

from talkface.serve.limits import shown_name, stored_name
from tests.helpers.cli import run_cli
from tests.helpers.serve import running_server
from tests.helpers.untrained import untrained_inputs

requests = pytest.importorskip("requests", reason="the dev extra (pip install -e '.[dev]') has requests")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return untrained_inputs(tmp_path_factory.mktemp("serve_inputs"))


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    with running_server(files, log, "--max-upload-mb", "2") as running:
        yield running


def post(server, files: dict, data: dict | None = None, path: str = "/v1/generate", timeout: float = 300):
    """A multipart POST of `files` ({field: Path or (name, bytes)})."""
    opened = {
        field: (value.name, value.read_bytes()) if isinstance(value, Path) else value for field, value in files.items()
    }
    return requests.post(f"{server.url}{path}", files=opened, data=data or {}, timeout=timeout)


def check_mp4(path: Path) -> tuple[int, float]:
    """(frames, audio seconds) of a decodable 25 fps H.264 + AAC mp4; fails otherwise."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.average_rate == 25 and video.codec_context.name == "h264"
        assert audio.codec_context.name == "aac"
        frames = sum(1 for _ in container.decode(video))
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(container.streams.audio[0]))
        rate = container.streams.audio[0].rate
    return frames, samples / rate


def test_help_names_every_option():
    result = run_cli(["serve", "--help"])
    assert result.returncode == 0
    for option in ("--host", "--port", "--landmark-ckpt", "--generator-ckpt", "--queue", "--max-upload-mb"):
        assert option in result.stdout
    assert "127.0.0.1" in result.stdout and "7860" in result.stdout


def test_one_checkpoint_without_the_other_is_one_line():
    result = run_cli(["serve", "--landmark-ckpt", "x.ckpt"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "give both --landmark-ckpt and --generator-ckpt" in result.stderr


def test_without_checkpoints_it_needs_the_released_models(monkeypatch, tmp_path, capsys):
    import talkface.weights
    from talkface.cli import main

    monkeypatch.setattr(talkface.weights, "LANDMARK", tmp_path / "landmark_real.safetensors")
    assert main(["serve", "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("talkface serve: error: the released models are not installed") and "\n" not in error


def test_a_taken_port_is_one_line_before_any_model_loads():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(["serve", "--landmark-ckpt", "a.ckpt", "--generator-ckpt", "b.ckpt", "--port", str(port)])
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"talkface serve: error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port or --host"
    )


def test_models_loaded_once_keep_their_feature_settings(files, tmp_path):
    """The server hands generate() LoadedModels: their data facts (here MFCC features, not the
    default log-mel) must reach the pipeline as they do when it is given the file."""
    import torch

    from lightning_modules import LandmarkModule
    from talkface.audio.features import FeatureConfig
    from talkface.errors import TalkfaceError
    from talkface.generation import generate
    from talkface.generation.checkpoints import LoadedModel, load_model

    mfcc = FeatureConfig(kind="mfcc")
    model = LandmarkModule(num_words=4, hidden=32, audio_dim=32, layers=1, feature_dim=mfcc.dim).eval()
    generator = load_model(files["generator"], "--generator-ckpt")
    with pytest.raises(TalkfaceError, match="-dim audio features"):  # without its facts: the default features
        generate(files["image"], files["audio"], model, generator, tmp_path / "bare.mp4")
    loaded = LoadedModel(model, {"features": mfcc.to_dict()}, {})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: more threads only spin on busy cores
    try:
        result = generate(files["image"], files["audio"], loaded, generator, tmp_path / "loaded.mp4")
    finally:
        torch.set_num_threads(threads)
    assert result.frames == 50


def test_form_options_are_checked_and_default_as_documented():
    from talkface.serve.app import Refused, _options

    assert _options({}) == {
        "paste_back": True,
        "feather": 0.1,
        "max_side": 1024,
        "mouth_from_photo": False,
        "teeth": False,
    }
    assert _options({"teeth": "true"})["teeth"] is True
    assert _options({"mouth_from_photo": "on", "paste_back": "no"})["mouth_from_photo"] is True
    with pytest.raises(Refused, match="mouth_from_photo 'maybe': give true or false"):
        _options({"mouth_from_photo": "maybe"})
    with pytest.raises(Refused, match="unknown form field 'smile'"):
        _options({"smile": "true"})


def test_upload_names_never_become_paths():
    assert stored_name("image", "../../etc/passwd") == "image"
    assert stored_name("image", "photo.JPG") == "image.jpg"
    assert stored_name("audio", "a/b/../speech.tar.gz;rm") == "audio"
    assert shown_name("C:\\Users\\me\\face.png", "image") == "face.png"
    assert shown_name("", "audio") == "audio"


@pytest.mark.slow
def test_a_request_returns_a_25_fps_mp4_with_audio_and_leaves_nothing(server, files, tmp_path):
    health = requests.get(f"{server.url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["precision"] in ("fp32", "bf16")  # what stage 2 runs in, chosen once at start-up
    started = time.perf_counter()
    response = post(server, {"image": files["image"], "audio": files["audio"]}, {"max_side": "256"})
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    out = tmp_path / "talking.mp4"
    out.write_bytes(response.content)
    frames, audio_seconds = check_mp4(out)
    assert frames == 50 and abs(audio_seconds - 2.0) < 0.05
    print(f"one request: {seconds:.2f} s")
    job_folders = _job_folders(server)
    assert job_folders == [], job_folders  # removed after the response


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    ["text as image", "empty audio", "oversized upload", "image as audio", "no face", "missing field", "bad option"],
)
def test_bad_requests_get_a_4xx_with_one_line(server, files, case):
    expected = {
        "text as image": (
            415,
            {"image": ("notes.png", b"just some text\n"), "audio": files["audio"]},
            "notes.png: not a readable image",
        ),
        "empty audio": (415, {"image": files["image"], "audio": ("speech.wav", b"")}, "speech.wav: the file is empty"),
        "oversized upload": (
            413,
            {"image": ("big.png", b"\0" * 3 * 1024 * 1024), "audio": files["audio"]},
            "larger than the server's limit of 2 MB",
        ),
        "image as audio": (415, {"image": files["image"], "audio": files["image"]}, "face.png"),
        "no face": (422, {"image": ("wall.png", _grey_png()), "audio": files["audio"]}, "no face found in wall.png"),
        "missing field": (400, {"image": files["image"]}, "send a speech recording as the file field `audio`"),
    }
    if case == "bad option":
        response = post(server, {"image": files["image"], "audio": files["audio"]}, {"feather": "3"})
        status, phrase = 400, "feather 3.0"
    else:
        status, upload, phrase = expected[case]
        response = post(server, upload)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert phrase in message and "\n" not in message and "/tmp" not in message
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200


@pytest.mark.slow
def test_page_jobs_report_progress_and_serve_their_video_once(server, files, tmp_path):
    options = {"paste_back": "false", "mouth_from_photo": "true", "teeth": "true"}
    response = post(server, {"image": files["image"], "audio": files["audio"]}, options, "/v1/jobs")
    assert response.status_code == 202
    job = response.json()["id"]
    seen = []
    for _ in range(600):
        state = requests.get(f"{server.url}/v1/jobs/{job}", timeout=10).json()
        seen.append((state["state"], state["done"], state["total"]))
        if state["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert state["state"] == "done", state
    assert seen[-1][1:] == (50, 50)
    video = requests.get(f"{server.url}/v1/jobs/{job}/video", timeout=30)
    assert video.status_code == 200
    (tmp_path / "crop.mp4").write_bytes(video.content)
    assert check_mp4(tmp_path / "crop.mp4")[0] == 50
    assert requests.get(f"{server.url}/v1/jobs/{job}/video", timeout=10).status_code == 404  # served once, removed
    assert requests.get(f"{server.url}/v1/jobs/..%2F..%2Fetc%2Fpasswd/video", timeout=10).status_code == 404


@pytest.mark.slow
def test_a_client_that_hangs_up_frees_the_queue(server, files, tmp_path):
    import http.client

    from tests.helpers.media_factory import tone, write_audio_file

    speech = write_audio_file(tmp_path / "long.mp3", tone(30.0, 22050, 220.0), 22050)  # ~15 s of work
    form = {"image": files["image"].read_bytes(), "audio": speech.read_bytes()}
    prepared = requests.Request("POST", f"{server.url}/v1/generate", files=form).prepare()
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
    connection.request("POST", "/v1/generate", body=prepared.body, headers=dict(prepared.headers))
    time.sleep(1.5)
    assert _busy(server) == 1
    connection.close()  # hang up while the video is being made
    deadline = time.monotonic() + 8  # long before the 30 s of speech would be done
    while _busy(server) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _busy(server) == 0
    assert _job_folders(server) == []


@pytest.mark.slow
def test_a_burst_is_served_or_told_to_retry_within_bounded_memory(files, tmp_path):
    with running_server(files, tmp_path / "server.log", "--queue", "4") as server:
        upload = {"image": files["image"], "audio": files["audio"]}
        first = post(server, upload, {"max_side": "256"})
        assert first.status_code == 200, first.text
        single = server.peak_rss_kb()

        def one(index: int):
            response = post(server, upload, {"max_side": "256"}, timeout=600)
            if response.status_code == 200:
                (tmp_path / f"burst{index}.mp4").write_bytes(response.content)
            return response

        started = time.perf_counter()
        with ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(one, range(12)))
        seconds = time.perf_counter() - started
        statuses = [response.status_code for response in responses]
        served = statuses.count(200)
        assert set(statuses) <= {200, 503}, [(r.status_code, r.text[:200]) for r in responses]
        assert 1 <= served <= 5  # one running and four waiting at most
        for response in responses:
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) > 0
                assert "busy" in response.json()["error"]
        for index, response in enumerate(responses):
            if response.status_code == 200:
                assert check_mp4(tmp_path / f"burst{index}.mp4")[0] == 50
        assert server.process.poll() is None
        assert requests.get(f"{server.url}/healthz", timeout=10).json()["busy"] == 0
        burst = server.peak_rss_kb()
        report = {"served": served, "refused": 12 - served, "seconds": round(seconds, 1)}
        report |= {"peak_rss_single_mb": single // 1024, "peak_rss_burst_mb": burst // 1024}
        print(json.dumps(report))
        assert burst <= 1.5 * single, report
        assert _job_folders(server) == []


def _busy(server) -> int:
    return requests.get(f"{server.url}/healthz", timeout=10).json()["busy"]


def _grey_png() -> bytes:
    """A photo without a face."""
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((240, 240, 3), 128, np.uint8))
    assert ok
    return data.tobytes()


def _job_folders(server) -> list[Path]:
    """What is left in the server's temporary folders (TMPDIR points the server at its own)."""
    return [job for root in server.tmp.glob("talkface-serve-*") for job in root.iterdir()]


def test_the_queue_is_bounded_and_forgets_unfetched_videos(monkeypatch):
    import threading

    from talkface.errors import NoFaceError
    from talkface.serve import jobs as jobs_module
    from talkface.serve.jobs import JobQueue, QueueFull

    monkeypatch.setattr(jobs_module, "SWEEP_SECONDS", 0.05)
    release = threading.Event()

    def work(job, on_progress):
        release.wait(10)
        if job.options.get("fail"):
            raise NoFaceError(f"no face found in {job.folder / 'image.png'}: use another photo")
        (job.folder / "talking.mp4").write_bytes(b"video")
        return job.folder / "talking.mp4"

    queue = JobQueue(work, waiting=1, keep_seconds=0.2)
    try:
        queue.reserve()
        queue.reserve()
        with pytest.raises(QueueFull):  # one running, one waiting: full
            queue.reserve()
        failing, done = queue.new_job(), queue.new_job()
        failing.options, failing.names = {"fail": True}, {str(failing.folder / "image.png"): "me.jpg"}
        queue.submit(failing), queue.submit(done)
        assert queue.position(done) == 1
        release.set()
        assert failing.future.result(10).status == 422
        assert failing.error == "no face found in me.jpg: use another photo" and not failing.folder.exists()
        assert done.future.result(10).state == "done" and done.output.exists()
        assert queue.busy() == 0
        deadline = time.monotonic() + 5
        while queue.get(done.id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queue.get(done.id) is None and not done.folder.exists()  # nobody fetched it: removed
    finally:
        queue.close()
    assert not queue.root.exists()
