"""The export task: a checkpoint as files that tools outside this project load (timm, ONNX, torch.export).

Each format is written into a temporary folder beside the output, checked against the PyTorch model,
and only then renamed into place: a failed export leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from .atomic import replaced_atomically
from .errors import ConfigurationError
from .model_card import write_model_card
from .models import ImageClassifier
from .run.checkpoints import load_classifier
from .run.outputs import check_output_writable
from .run.task import Run

log = logging.getLogger(__name__)
# The batch sizes every export is compared with PyTorch at (the batch size is dynamic).
CHECK_BATCHES = (1, 7)
# The largest difference from PyTorch's logits an export may have.
TOLERANCE = 1e-4


def data_config(model: ImageClassifier) -> dict[str, Any]:
    """The preprocessing the model was trained with, in timm's data-config keys."""
    preprocessing = model.preprocessing
    return {
        "input_size": tuple(preprocessing["input_size"]),
        "interpolation": preprocessing["interpolation"],
        "mean": tuple(preprocessing["mean"]),
        "std": tuple(preprocessing["std"]),
        "crop_pct": preprocessing["crop_pct"],
        "crop_mode": preprocessing["crop_mode"],
    }


def check_inputs(model: ImageClassifier) -> dict[int, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    size = model.preprocessing["input_size"]
    return {batch: torch.randn(batch, *size, generator=generator) for batch in CHECK_BATCHES}


def compare(name: str, reference: Callable, exported: Callable, inputs: dict[int, torch.Tensor]) -> float:
    """Largest absolute difference of the logits over the check batches; a ConfigurationError when an
    export differs by more than TOLERANCE or picks another top-1 class."""
    worst = 0.0
    for batch, images in inputs.items():
        expected, got = np.asarray(reference(images)), np.asarray(exported(images))
        difference = float(np.abs(expected - got).max())
        worst = max(worst, difference)
        if difference > TOLERANCE or (expected.argmax(-1) != got.argmax(-1)).any():
            raise ConfigurationError(
                f"The {name} export differs from the PyTorch model at batch {batch} (max abs diff "
                f"{difference:.2e}, tolerance {TOLERANCE}); nothing was written."
            )
    return worst


def dynamic_batch() -> dict[str, dict[int, Any]]:
    """torch.export's dynamic_shapes for a timm model's one input `x`: any batch size."""
    from torch.export import Dim

    return {"x": {0: Dim("batch", min=1)}}


def export_timm(model: ImageClassifier, folder: Path, checkpoint: str, card: Mapping[str, Any]) -> Callable:
    """model.safetensors and config.json (architecture, classes, label names, the run's preprocessing
    as pretrained_cfg) as timm's save_for_hf writes them, and a model card (model_card/). timm's
    `local-dir:` and transformers' AutoModelForImageClassification both load it."""
    from timm.models import save_for_hf

    save_for_hf(
        model.model,
        str(folder),
        model_config={"label_names": list(model.class_names), "pretrained_cfg": {"tag": "fine-tuned"}},
        safe_serialization=True,
        data_config=data_config(model),
    )
    # timm 1.0 also records num_classes in model_args; Hugging Face transformers' timm wrapper then
    # passes it twice and refuses the folder. timm itself reads the top-level num_classes.
    config_file = folder / "config.json"
    config = json.loads(config_file.read_text())
    config.get("model_args", {}).pop("num_classes", None)
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    write_model_card(folder, model, checkpoint, license=card["license"], tags=card.get("tags") or ())

    def load() -> Callable:
        import timm

        loaded = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
        return lambda images: loaded(images).detach().numpy()

    return load


def export_onnx(model: ImageClassifier, folder: Path, example: torch.Tensor) -> Callable:
    """model.onnx: one file, input `input` (dynamic batch), output `logits`; class names and
    preprocessing in its metadata."""
    import onnx

    path = folder / "model.onnx"
    for name in ("onnx_ir", "onnxscript"):  # a line per optimisation pass otherwise
        logging.getLogger(name).setLevel(logging.WARNING)
    torch.onnx.export(
        model.model,
        (example,),
        str(path),
        dynamo=True,
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes=dynamic_batch(),
        external_data=False,
        verbose=False,
    )
    exported = onnx.load(str(path))
    for key, value in (("class_names", list(model.class_names)), ("preprocessing", model.preprocessing)):
        exported.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(exported, str(path))

    def load() -> Callable:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: session.run(["logits"], {"input": images.numpy()})[0]

    return load


def export_pt2(model: ImageClassifier, folder: Path, example: torch.Tensor) -> Callable:
    """model.pt2: torch.export's program (dynamic batch), which torch.export.load runs without timm."""
    path = folder / "model.pt2"
    program = torch.export.export(model.model, (example,), dynamic_shapes=dynamic_batch())
    torch.export.save(program, str(path))

    def load() -> Callable:
        loaded = torch.export.load(str(path)).module()
        return lambda images: loaded(images).detach().numpy()

    return load


# Each is written into its own folder of output_dir, named after it.
FORMATS = ("timm", "onnx", "pt2")


def check_formats(formats: Any) -> list[str]:
    names = [formats] if isinstance(formats, str) else list(formats or [])
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise ConfigurationError(
            f"formats={names}: {'unknown ' + ', '.join(map(repr, unknown)) if unknown else 'none given'}; "
            f"choose from {list(FORMATS)}, e.g. formats=[timm,onnx,pt2]."
        )
    if "onnx" in names:
        import importlib.util

        missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigurationError(f"formats=[onnx] needs {', '.join(missing)}: pip install -e '.[onnx]'")
    return list(dict.fromkeys(names))


def check_model_card(card: Mapping[str, Any]) -> dict[str, Any]:
    """A license id and a list of tags; a single tag given as a word is a list of one."""
    tags = card.get("tags") or []
    tags = [tags] if isinstance(tags, str) else list(tags)
    if not isinstance(card.get("license"), str) or not card["license"].strip():
        raise ConfigurationError(
            f"model_card.license={card.get('license')!r}: give a Hugging Face Hub license id, e.g. "
            "model_card.license=apache-2.0 (or other)."
        )
    return {"license": card["license"], "tags": [str(tag) for tag in tags]}


def export(config: DictConfig) -> dict[str, Any]:
    """Write the checkpoint `config.ckpt_path` in each of `config.formats` into `config.output_dir`."""
    with Run(config) as run:
        formats = check_formats(config.formats)
        card = check_model_card(config.model_card)
        output_dir = Path(config.output_dir or Path(config.paths.output_dir) / "export").expanduser()
        check_output_writable("output_dir", output_dir, folder=True)
        taken = [name for name in formats if (output_dir / name).exists()]
        if taken:
            raise ConfigurationError(
                f"output_dir={str(output_dir)!r} already holds an export ({', '.join(taken)}/); choose a "
                "new output_dir, or move that export away."
            )
        model = load_classifier(config.ckpt_path).eval()
        checkpoint = str(Path(config.ckpt_path).expanduser().resolve())
        inputs = check_inputs(model)
        output_dir.mkdir(parents=True, exist_ok=True)

        def reference(images: torch.Tensor) -> np.ndarray:
            with torch.no_grad():
                return model.model(images).numpy()

        written, report = {}, {}
        with torch.no_grad():
            for name in formats:
                started = time.perf_counter()
                final = output_dir / name
                with replaced_atomically(final, directory=True) as staging:  # renamed once it checks out
                    if name == "timm":
                        load = export_timm(model, staging, checkpoint, card)
                    elif name == "onnx":
                        load = export_onnx(model, staging, inputs[CHECK_BATCHES[-1]])
                    else:
                        load = export_pt2(model, staging, inputs[CHECK_BATCHES[-1]])
                    seconds = time.perf_counter() - started
                    difference = compare(name, reference, load(), inputs)
                written[f"{name} (max abs diff {difference:.1e})"] = final
                report[name] = {"path": str(final), "max_abs_diff": difference, "export_s": round(seconds, 2)}
                log.info("%s: %s (max abs diff from PyTorch %.2e, %.1f s)", name, final, difference, seconds)
        run.save_config()
        return run.finish(
            {"checkpoint": checkpoint, "exports": report},
            title=f"Exported {checkpoint}",
            paths=written,
            metrics={},
        )
