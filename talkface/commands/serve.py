"""Serve a web page and an HTTP API that make talking-face videos, with the models loaded once."""

from __future__ import annotations

import argparse
import socket
import sys
import time

from talkface.checks import check_device_available, check_device_name
from talkface.errors import TalkfaceError
from talkface.faces import BACKENDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--landmark-ckpt", help="stage-1 model (.ckpt or .safetensors; default: the released model)")
    parser.add_argument("--generator-ckpt", help="stage-2 model (.ckpt or .safetensors; default: the released model)")
    parser.add_argument(
        "--queue",
        type=int,
        default=4,
        help="requests that may wait while one video is made; more are answered 503 with Retry-After (default 4)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest request (photo + speech) in MB (default 20)"
    )
    parser.add_argument(
        "--max-audio-seconds", type=float, default=60.0, help="longest speech accepted, in seconds (default 60)"
    )
    parser.add_argument("--backend", choices=BACKENDS, default="dlib", help="face landmark detector (default dlib)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")


def run(args: argparse.Namespace) -> int:
    from talkface.serve.limits import Limits

    if (args.landmark_ckpt is None) != (args.generator_ckpt is None):
        raise TalkfaceError("give both --landmark-ckpt and --generator-ckpt, or neither (the released models)")
    if not 0 <= args.port <= 65535:
        raise TalkfaceError(f"--port {args.port}: give a port from 0 to 65535")
    limits = Limits(args.max_upload_mb, args.max_audio_seconds, args.queue)
    limits.check()
    check_device_name(args.device)
    _check_listenable(args.host, args.port)  # before the models load: a taken port is known at once
    check_device_available(args.device)

    from talkface.serve.app import create_app
    from talkface.serve.models import load_models

    started = time.perf_counter()
    models = load_models(args.landmark_ckpt, args.generator_ckpt, args.device, args.backend)
    app = create_app(models, limits)
    print(
        f"talkface serve: loaded {models.names[0]} and {models.names[1]} in {time.perf_counter() - started:.1f} s; "
        f"serving on http://{_url_host(args.host)}:{args.port} (Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    if not _serve(app, args.host, args.port):
        raise TalkfaceError(f"could not listen on {args.host}:{args.port} (the reason is in the line above)")
    return 0


def _check_listenable(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise TalkfaceError(
                f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host"
            ) from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve(app, host: str, port: int) -> bool:
    """Runs uvicorn until SIGTERM or Ctrl-C; False when it could not start (e.g. the port is taken)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # Stop the queue at once: requests waiting for a video are answered (503) instead of
            # holding the shutdown until their turn comes.
            app.state.jobs.stop()
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind, after logging why
        return False
    return server.started
