"""The serve task: a trained model behind an HTTP server (LitServe) that batches requests.

`POST /predict` takes an image (a multipart upload in the field `image`, or JSON `{"image": "<base64>"}`)
and answers its top-k classes as transformers' image-classification pipeline does, `[{"label", "score"},
...]`, best first: what predict.py writes for the same file. `GET /health` answers `ok` once the model is
loaded; `GET /` is a page to upload an image. A bad request gets a 4xx with a one-line `detail`; the
others in its batch are answered as usual.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from .data.images import READ_ERRORS, load_rgb, read_image_size
from .data.transforms import build_transform
from .errors import ConfigurationError
from .models import resolve_preprocessing
from .prediction import class_probabilities, top_predictions
from .run.checkpoints import load_classifier
from .run.task import Run

try:  # the `serve` extra: training never needs it
    import litserve
    import python_multipart  # Starlette parses uploads with it  # noqa: F401
    from fastapi import Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException
    from starlette.formparsers import MultiPartException
except ModuleNotFoundError as missing:
    raise ConfigurationError(
        f"serve.py needs LitServe ({missing.name} is not installed): pip install -e '.[serve]'"
    ) from None

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("serving_page.html")
# The hosts LitServe binds to.
HOSTS = ("127.0.0.1", "0.0.0.0", "::")
JSON_TYPE, MULTIPART_TYPE = "application/json", "multipart/form-data"


@dataclass
class ServedModel:
    """A network with the class names and preprocessing it was trained with."""

    network: torch.nn.Module
    class_names: list[str]
    preprocessing: dict[str, Any]


def load_served_model(ckpt_path: str | None, model_dir: str | None) -> ServedModel:
    """The model of a checkpoint of this project, or of a timm folder that export.py wrote."""
    if bool(ckpt_path) == bool(model_dir):
        raise ConfigurationError(
            f"ckpt_path={ckpt_path!r}, model_dir={model_dir!r}: give exactly one, a checkpoint "
            "(ckpt_path=logs/train/runs/<run>/checkpoints/<file>.ckpt) or an export "
            "(model_dir=<export>/timm)."
        )
    if ckpt_path:
        classifier = load_classifier(ckpt_path).eval()
        return ServedModel(classifier, list(classifier.class_names), dict(classifier.preprocessing))
    import timm

    folder = Path(str(model_dir)).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigurationError(
            f"model_dir={str(model_dir)!r} holds no config.json: give the timm folder export.py wrote "
            "(<output_dir>/timm)."
        )
    network = timm.create_model(f"local-dir:{folder.resolve()}", pretrained=True).eval()
    names = network.pretrained_cfg.get("label_names") or [str(i) for i in range(network.num_classes)]
    return ServedModel(network, list(names), resolve_preprocessing(network))


class BadRequest(Exception):
    """A request the server refuses: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def base64_image(value: Any) -> bytes:
    """The image file in JSON's `image`: base64, optionally as a data URL (`data:image/png;base64,...`)."""
    if not isinstance(value, str):
        raise BadRequest(400, 'The JSON body needs {"image": "<the image file in base64>"}.')
    try:
        encoded = value.split(",", 1)[-1] if value.startswith("data:") else value
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, 'JSON "image" is not base64: encode the image file\'s bytes.') from None
    if not data:
        raise BadRequest(400, "The image is empty (0 bytes).")
    return data


def body_then(body: bytes, receive):
    """An ASGI `receive` that gives `body` whole, then what `receive` gives (the client's disconnect)."""
    given = False

    async def replay() -> dict[str, Any]:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused (413) as soon as it grows past `max_bytes`."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise BadRequest(
                413, f"The body is over {max_bytes / 1e6:.1f} MB (max_upload_mb); send a smaller image."
            )
    return bytes(body)


async def image_from_request(request: Request, max_bytes: int) -> bytes:
    """The image file a POST /predict carries, as a multipart field `image` or JSON `{"image": base64}`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (JSON_TYPE, MULTIPART_TYPE):
        raise BadRequest(
            415,
            f"Content-Type {content_type or 'none'!r}: send the image as multipart/form-data (field "
            '`image`) or as application/json {"image": "<base64>"}.',
        )
    body = await read_body(request, max_bytes)
    if not body:
        raise BadRequest(400, "The request body is empty: send an image.")
    if content_type == JSON_TYPE:
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadRequest(400, 'The body is not JSON: send {"image": "<base64>"}.') from None
        return base64_image(payload.get("image") if isinstance(payload, dict) else None)
    try:  # Starlette parses the form from the body read above
        form = await Request(request.scope, body_then(body, request.receive)).form()
    except (HTTPException, MultiPartException) as error:  # a body that is not a form
        reason = getattr(error, "detail", None) or getattr(error, "message", error)
        raise BadRequest(400, f"The multipart body cannot be parsed ({reason}).") from None
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise BadRequest(
            400, f"The multipart form needs the image file in the field `image` (got fields {list(form)})."
        )
    data = await upload.read()
    await form.close()
    if not data:
        raise BadRequest(400, "The image is empty (0 bytes).")
    return data


def decode_image(data: bytes, max_pixels: int):
    """The image as 8-bit RGB (as predict.py reads files); its size is checked from the header first."""
    try:
        width, height = read_image_size(io.BytesIO(data))
    except READ_ERRORS as error:
        raise BadRequest(400, f"Not an image file Pillow can read ({type(error).__name__}).") from None
    if width * height > max_pixels:
        raise BadRequest(
            413,
            f"The image is {width}x{height} ({width * height / 1e6:.1f} megapixels); this server takes up "
            f"to {max_pixels / 1e6:.1f} megapixels (max_pixels). Send a smaller image.",
        )
    try:
        return load_rgb(io.BytesIO(data))
    except READ_ERRORS as error:
        raise BadRequest(400, f"The image cannot be decoded, truncated or corrupt ({error}).") from None


class ImageClassifierAPI(litserve.LitAPI):
    """Decode and preprocess each request, run the model once per batch, answer each request."""

    def __init__(
        self,
        ckpt_path: str | None,
        model_dir: str | None,
        top_k: int,
        flip_tta: bool,
        max_pixels: int,
        max_batch_size: int,
        batch_timeout: float,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/predict")
        self.source = {"ckpt_path": ckpt_path, "model_dir": model_dir}
        self.top_k, self.flip_tta, self.max_pixels = top_k, flip_tta, max_pixels

    def setup(self, device: str) -> None:
        served = load_served_model(**self.source)
        self.torch_device = torch.device(device)
        self.network = served.network.to(self.torch_device)
        self.class_names = served.class_names
        self.transform = build_transform(served.preprocessing, is_training=False)

    def decode_request(self, request) -> torch.Tensor | BadRequest:  # no annotation: LitServe parses the JSON
        # A refusal travels on as a value: an exception here would fail every request of the batch.
        try:
            return self.transform(decode_image(base64_image(request.get("image")), self.max_pixels))
        except BadRequest as refusal:
            return refusal

    def batch(self, inputs: list) -> list:
        return inputs  # refusals among them: predict() stacks the images

    def predict(self, inputs: Any) -> list:
        if not isinstance(inputs, list):  # max_batch_size=1: LitServe passes one input
            return self.predict([inputs])[0]
        images = [x for x in inputs if isinstance(x, torch.Tensor)]
        if not images:
            return inputs
        with torch.inference_mode():
            probabilities = class_probabilities(
                self.network, torch.stack(images).to(self.torch_device), self.flip_tta
            )
        answers = iter(top_predictions(probabilities.cpu(), self.class_names, self.top_k))
        return [(next(answers), len(images)) if isinstance(x, torch.Tensor) else x for x in inputs]

    def unbatch(self, output: list) -> list:
        return output

    def encode_response(self, output: Any) -> Response:
        if isinstance(output, BadRequest):
            return JSONResponse({"detail": output.reason}, status_code=output.status)
        predictions, batch_size = output
        # X-Batch-Size: how many images the model ran on together with this one (dynamic batching).
        return JSONResponse(predictions, headers={"X-Batch-Size": str(batch_size)})


class ImageRequests:
    """ASGI middleware for POST /predict: a request without a readable image body is answered 4xx
    here (LitServe would answer 500), and a multipart upload travels on as JSON `{"image": base64}`,
    which LitServe can hand to its worker processes (an upload's file object cannot be pickled)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/predict":
            return await self.app(scope, receive, send)
        try:
            image = await image_from_request(Request(scope, receive), self.max_bytes)
        except BadRequest as refusal:
            response = JSONResponse({"detail": refusal.reason}, status_code=refusal.status)
            return await response(scope, receive, send)
        body = json.dumps({"image": base64.b64encode(image).decode()}).encode()
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        await self.app({**scope, "headers": headers}, body_then(body, receive), send)


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


def check_serve_settings(config: DictConfig) -> None:
    if config.host not in HOSTS:
        raise ConfigurationError(f"host={config.host!r}: LitServe binds to one of {', '.join(HOSTS)}.")
    if not 1024 <= int(config.port) <= 65535:
        raise ConfigurationError(f"port={config.port}: use a port from 1024 to 65535, e.g. port=8000.")
    for key in ("top_k", "max_batch_size", "workers_per_device", "max_pixels"):
        if int(config[key]) < 1:
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
