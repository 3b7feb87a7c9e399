"""The model behind the server: loaded from a checkpoint or an export, run once per batch of requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import litserve
import torch
from fastapi.responses import JSONResponse, Response

from ..data.transforms import build_transform
from ..errors import ConfigurationError
from ..models import class_probabilities, resolve_preprocessing, top_predictions
from ..run.checkpoints import load_classifier
from .requests import BadRequest, base64_image, decode_image


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
        cpu_threads: int,
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/predict")
        self.source = {"ckpt_path": ckpt_path, "model_dir": model_dir}
        self.top_k, self.flip_tta, self.max_pixels = top_k, flip_tta, max_pixels
        self.cpu_threads = cpu_threads

    def setup(self, device: str) -> None:
        self.torch_device = torch.device(device)
        if self.torch_device.type == "cpu":  # in the worker process: its own thread count
            torch.set_num_threads(self.cpu_threads)
        served = load_served_model(**self.source)
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
