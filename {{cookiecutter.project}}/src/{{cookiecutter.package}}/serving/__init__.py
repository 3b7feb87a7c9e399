"""The serve task: a trained model behind an HTTP server (LitServe) that batches requests.

`POST /predict` takes an image (a multipart upload in the field `image`, or JSON `{"image": "<base64>"}`)
and answers its top-k classes as transformers' image-classification pipeline does, `[{"label", "score"},
...]`, best first: what predict.py writes for the same file. `GET /health` answers `ok` once the model is
loaded; `GET /` is a page to upload an image. A bad request gets a 4xx with a one-line `detail`; the
others in its batch are answered as usual.
"""

from ..errors import ConfigurationError

try:  # the `serve` extra: training never needs it
    import litserve  # noqa: F401
    import python_multipart  # noqa: F401  Starlette parses uploads with it
except ModuleNotFoundError as missing:
    raise ConfigurationError(
        f"serve.py needs LitServe ({missing.name} is not installed): pip install -e '.[serve]'"
    ) from None

from .api import ServedModel, load_served_model
from .requests import BadRequest, decode_image
from .server import build_server, serve

__all__ = ["BadRequest", "ServedModel", "build_server", "decode_image", "load_served_model", "serve"]
