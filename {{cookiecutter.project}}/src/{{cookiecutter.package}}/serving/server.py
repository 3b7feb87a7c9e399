"""The serve task: the LitServer of a config (the model API, the request checks, the upload page), run
until SIGTERM or Ctrl+C."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import litserve
from fastapi.responses import HTMLResponse
from omegaconf import DictConfig

from ..errors import ConfigurationError
from ..run.task import Run
from .api import ImageClassifierAPI, load_served_model
from .requests import ImageRequests

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")
# The hosts LitServe binds to.
HOSTS = ("127.0.0.1", "0.0.0.0", "::")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl+C does: LitServe then stops its workers and returns."""

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def build_server(config: DictConfig) -> litserve.LitServer:
    """The LitServer of `config`: the model API, the request checks, and the upload page at `/`."""
    api = ImageClassifierAPI(
        ckpt_path=config.get("ckpt_path"),
        model_dir=config.get("model_dir"),
        top_k=int(config.top_k),
        flip_tta=bool(config.flip_tta),
        max_pixels=int(config.max_pixels),
        max_batch_size=int(config.max_batch_size),
        batch_timeout=float(config.batch_timeout),
        cpu_threads=worker_cpu_threads(config),
    )
    max_bytes = int(float(config.max_upload_mb) * 1e6)
    server = litserve.LitServer(
        api,
        accelerator=config.accelerator,
        devices=config.devices,
        workers_per_device=int(config.workers_per_device),
        timeout=float(config.timeout),
        middlewares=[(ImageRequests, {"max_bytes": max_bytes})],
    )
    # LitServe answers `/` with a line of text; the upload page takes its place.
    server.app.router.routes = [r for r in server.app.router.routes if getattr(r, "path", None) != "/"]
    page = PAGE.read_text()
    server.app.add_api_route("/", lambda: HTMLResponse(page), methods=["GET"], include_in_schema=False)
    return server


def worker_cpu_threads(config: DictConfig) -> int:
    """torch's threads in each worker on a CPU: `cpu_threads`, or with null the cores less one (which the
    HTTP process needs) shared among the workers, at least 1."""
    if config.get("cpu_threads") is not None:
        return int(config.cpu_threads)
    return max(1, ((os.cpu_count() or 1) - 1) // int(config.workers_per_device))


def check_serve_settings(config: DictConfig) -> None:
    if config.host not in HOSTS:
        raise ConfigurationError(f"host={config.host!r}: LitServe binds to one of {', '.join(HOSTS)}.")
    if not 1024 <= int(config.port) <= 65535:
        raise ConfigurationError(f"port={config.port}: use a port from 1024 to 65535, e.g. port=8000.")
    for key in ("top_k", "max_batch_size", "workers_per_device", "max_pixels", "cpu_threads"):
        if config.get(key) is not None and int(config[key]) < 1:
            raise ConfigurationError(f"{key}={config[key]}: use a positive number.")
    if float(config.batch_timeout) < 0:
        raise ConfigurationError(f"batch_timeout={config.batch_timeout}: seconds, 0 or more (e.g. 0.01).")


def serve(config: DictConfig) -> dict[str, Any]:
    """Serve the model of `config.ckpt_path` or `config.model_dir` until SIGTERM or Ctrl+C."""
    with Run(config) as run:
        check_serve_settings(config)
        # Loaded here too, so that a bad model fails the command, not a worker process.
        served = load_served_model(config.get("ckpt_path"), config.get("model_dir"))
        server = build_server(config)
        run.save_config()
        url = f"http://{config.host}:{config.port}"
        log.info(
            "Serving %s (%d classes) at %s: POST /predict, GET /health, the upload page at /",
            config.get("ckpt_path") or config.get("model_dir"),
            len(served.class_names),
            url,
        )
        del served
        with sigterm_as_interrupt():
            server.run(
                host=config.host,
                port=int(config.port),
                log_level=str(config.log_level),
                generate_client_file=False,  # LitServe would write client.py into the working directory
            )
        return run.finish(
            {"model": config.get("ckpt_path") or config.get("model_dir"), "url": url},
            title=f"Served at {url}",
            paths={},
            metrics={},
        )
