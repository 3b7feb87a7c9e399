"""Reading the image a POST /predict carries, and refusing, with a 4xx and a one-line reason, a request
that carries none: before the request reaches LitServe (ImageRequests) and while decoding it."""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from ..data.images import READ_ERRORS, load_rgb, read_image_size

JSON_TYPE, MULTIPART_TYPE = "application/json", "multipart/form-data"


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
