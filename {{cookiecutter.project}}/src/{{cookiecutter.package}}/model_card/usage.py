"""The model card's loading code (timm, transformers, onnxruntime) and upload command: text that is the
same for every export, run as it stands by the project's tests."""

from __future__ import annotations


def usage_section() -> list[str]:
    """Loading snippets for timm, transformers and onnxruntime; each runs as it stands from this folder
    with a `photo.jpg` beside it (the project's tests run them)."""
    return [
        "## Use",
        "",
        "Each snippet runs from this folder with an image `photo.jpg`; once the folder is on the Hub, use "
        'its repository id instead of `"."` (`"hf-hub:<user>/<repo>"` for timm).',
        "",
        "timm (the preprocessing comes from `config.json`):",
        "",
        "```python",
        "import timm",
        "import torch",
        "from PIL import Image",
        "from timm.data import create_transform, resolve_model_data_config",
        "",
        'model = timm.create_model("local-dir:.", pretrained=True).eval()',
        "transform = create_transform(**resolve_model_data_config(model))",
        "with torch.no_grad():",
        '    probabilities = model(transform(Image.open("photo.jpg").convert("RGB"))[None]).softmax(-1)[0]',
        'print(model.pretrained_cfg["label_names"][int(probabilities.argmax())])',
        "```",
        "",
        "Hugging Face transformers (its `TimmWrapper` classes read the same `config.json`):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        'classifier = pipeline("image-classification", model=".")',
        'print(classifier("photo.jpg")[0]["label"])  # the top 5, best first: [{"label", "score"}, ...]',
        "```",
        "",
        "onnxruntime, with `model.onnx` from `export.py formats=[onnx]` (the `onnx/` folder beside this one;"
        " copy it here to ship it with the model):",
        "",
        "```python",
        "import json",
        "",
        "import numpy as np",
        "import onnxruntime",
        "from PIL import Image",
        "from timm.data import create_transform",
        "",
        'session = onnxruntime.InferenceSession("../onnx/model.onnx", providers=["CPUExecutionProvider"])',
        "metadata = session.get_modelmeta().custom_metadata_map",
        'preprocessing = json.loads(metadata["preprocessing"])',
        "transform = create_transform(",
        '    input_size=tuple(preprocessing["input_size"]),',
        '    interpolation=preprocessing["interpolation"],',
        '    mean=tuple(preprocessing["mean"]),',
        '    std=tuple(preprocessing["std"]),',
        '    crop_pct=preprocessing["crop_pct"],',
        '    crop_mode=preprocessing["crop_mode"],',
        ")",
        'image = transform(Image.open("photo.jpg").convert("RGB"))[None].numpy()',
        'logits = session.run(["logits"], {"input": image})[0]',
        'print(json.loads(metadata["class_names"])[int(np.argmax(logits))])',
        "```",
        "",
    ]


def upload_section() -> list[str]:
    return [
        "## Upload",
        "",
        "With the Hub's command-line tool (`pip install huggingface_hub`), after `hf auth login`:",
        "",
        "```bash",
        "hf upload <user>/<repo> .",
        "```",
        "",
    ]
