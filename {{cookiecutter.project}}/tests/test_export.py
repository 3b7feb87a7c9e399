"""export.py: each format loaded by the tool it is for (timm, onnxruntime, torch.export), not by us."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from {{ cookiecutter.package }}.data.transforms import build_transform
from {{ cookiecutter.package }}.errors import ConfigurationError
from {{ cookiecutter.package }}.exporting import export
from {{ cookiecutter.package }}.hydra_compat import VERSION_BASE
from {{ cookiecutter.package }}.run.checkpoints import load_classifier
from {{ cookiecutter.package }}.training import train

from conftest import CONFIG_DIR, FAST, read_only_folder, run_script


def trained_checkpoint(directory: Path, backbone: str = "test_resnet") -> str:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose("train", [*FAST, f"model.backbone={backbone}", "test=false"])
    with open_dict(config):
        config.paths.output_dir = str(directory)
    return train(config)["best_checkpoint"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """One export of every format from a checkpoint, with inputs and the checkpoint's own logits."""
    root = tmp_path_factory.mktemp("export")
    checkpoint = trained_checkpoint(root / "run")
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        config = compose("export", [f"ckpt_path={checkpoint}", f"output_dir={root / 'out'}"])
    with open_dict(config):
        config.paths.output_dir = str(root / "export_run")
    results = export(config)
    model = load_classifier(checkpoint).eval()
    images = torch.randn(7, *model.preprocessing["input_size"], generator=torch.Generator().manual_seed(1))
    np.save(root / "images.npy", images.numpy())
    with torch.no_grad():
        logits = model(images).numpy()
    return {
        "root": root,
        "out": root / "out",
        "results": results,
        "model": model,
        "images": images,
        "logits": logits,
    }


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter that never imports this project (as a user's own script)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


def test_the_timm_folder_loads_in_plain_timm_with_the_runs_preprocessing_and_labels(exported):
    code = """
import json, sys, numpy as np, timm, torch
from timm.data import resolve_model_data_config
model = timm.create_model("local-dir:" + sys.argv[1], pretrained=True).eval()
with torch.no_grad():
    logits = model(torch.from_numpy(np.load(sys.argv[2]))).numpy()
np.save(sys.argv[3], logits)
from PIL import Image
from timm.data import create_transform
transform = create_transform(**resolve_model_data_config(model))  # as timm's own inference script does
np.save(sys.argv[5], transform(Image.open(sys.argv[4]).convert("RGB")).numpy())
assert not any(name.startswith("{{ cookiecutter.package }}") for name in sys.modules)
print(json.dumps({"data": resolve_model_data_config(model), "labels": model.pretrained_cfg["label_names"]}))
"""
    root, model = exported["root"], exported["model"]
    photo = root / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(photo)
    arguments = [str(exported["out"] / "timm"), str(root / "images.npy"), str(root / "timm.npy")]
    result = run_python(code, *arguments, str(photo), str(root / "input.npy"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.abs(np.load(root / "timm.npy") - exported["logits"]).max() < 1e-5
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert loaded["labels"] == list(model.class_names)
    preprocessing = model.preprocessing
    assert loaded["data"] == {
        "input_size": preprocessing["input_size"],
        "interpolation": preprocessing["interpolation"],
        "mean": pytest.approx(preprocessing["mean"]),
        "std": pytest.approx(preprocessing["std"]),
        "crop_pct": preprocessing["crop_pct"],
        "crop_mode": preprocessing["crop_mode"],
    }
    # timm's transform from the folder gives the model the input the run's own eval transform gives.
    ours = build_transform(model.preprocessing, is_training=False)(Image.open(photo).convert("RGB"))
    assert np.abs(np.load(root / "input.npy") - ours.numpy()).max() < 1e-6
    card = (exported["out"] / "timm" / "README.md").read_text()
    assert "local-dir:" in card and "classes: " in card


def test_the_timm_config_names_the_classes_once_as_transformers_needs(exported):
    # Hugging Face transformers' timm wrapper passes model_args and num_classes to timm both, and
    # refuses a config.json whose model_args repeat num_classes (as timm 1.0.31's save_for_hf writes).
    config = json.loads((exported["out"] / "timm" / "config.json").read_text())
    assert config["num_classes"] == len(exported["model"].class_names)
    assert "num_classes" not in config.get("model_args", {})


def test_the_onnx_file_runs_in_onnxruntime_like_pytorch_at_batch_1_and_7(exported):
    onnxruntime = pytest.importorskip("onnxruntime")
    import onnx

    path = exported["out"] / "onnx" / "model.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"] and [
        o.name for o in session.get_outputs()
    ] == ["logits"]
    for batch in (1, 7):
        got = session.run(None, {"input": exported["images"][:batch].numpy()})[0]
        expected = exported["logits"][:batch]
        assert np.abs(got - expected).max() < 1e-4
        assert (got.argmax(-1) == expected.argmax(-1)).all()
    metadata = {
        p.key: json.loads(p.value) for p in onnx.load(str(path), load_external_data=False).metadata_props
    }
    assert metadata["class_names"] == list(exported["model"].class_names)
    assert metadata["preprocessing"] == exported["model"].preprocessing
    assert [p.name for p in (exported["out"] / "onnx").iterdir()] == ["model.onnx"]  # one file


def test_the_pt2_program_runs_in_a_process_without_timm(exported):
    code = """
import sys, numpy as np, torch
program = torch.export.load(sys.argv[1])
np.save(sys.argv[3], program.module()(torch.from_numpy(np.load(sys.argv[2]))).detach().numpy())
assert "timm" not in sys.modules, "timm was imported"
assert not any(name.startswith("{{ cookiecutter.package }}") for name in sys.modules)
"""
    root = exported["root"]
    result = run_python(
        code, str(exported["out"] / "pt2" / "model.pt2"), str(root / "images.npy"), str(root / "pt2.npy")
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.abs(np.load(root / "pt2.npy") - exported["logits"]).max() < 1e-5


def test_results_json_records_each_format_and_its_difference(exported):
    exports = exported["results"]["exports"]
    assert list(exports) == ["timm", "onnx", "pt2"]
    assert all(values["max_abs_diff"] < 1e-4 for values in exports.values())


def test_an_output_dir_holding_an_export_is_refused_untouched(exported, compose_config):
    before = sorted(str(p) for p in exported["out"].rglob("*"))
    config = compose_config(
        [f"ckpt_path={exported['results']['checkpoint']}", f"output_dir={exported['out']}"], "export"
    )
    with pytest.raises(ConfigurationError, match="already holds an export"):
        export(config)
    assert sorted(str(p) for p in exported["out"].rglob("*")) == before


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("read-only/sub/model", "cannot be written: "),
        ("file", "is a file, not a folder"),
        ("file/model", "is a file, not a folder"),
    ],
)
def test_an_output_dir_that_cannot_be_written_is_refused_before_exporting(
    exported, compose_config, tmp_path, where, message
):
    (tmp_path / "file").write_text("mine\n")
    output_dir = (
        where.replace("read-only", str(read_only_folder())) if "read-only" in where else tmp_path / where
    )
    config = compose_config(
        [f"ckpt_path={exported['results']['checkpoint']}", f"output_dir={output_dir}"], "export"
    )
    with pytest.raises(ConfigurationError, match=re.escape(f"output_dir={str(output_dir)!r}")) as refused:
        export(config)
    assert message in str(refused.value)
    assert (
        sorted(path.name for path in tmp_path.iterdir()) == ["file"]
        and (tmp_path / "file").read_text() == "mine\n"
    )


def test_a_model_card_needs_a_license_and_takes_one_tag_as_a_word(exported, compose_config, tmp_path):
    checkpoint = f"ckpt_path={exported['results']['checkpoint']}"
    with pytest.raises(ConfigurationError, match=re.escape("model_card.license='': give a Hugging Face Hub")):
        export(compose_config([checkpoint, "formats=[timm]", "model_card.license=''"], "export"))
    assert not (tmp_path / "run").exists()
    export(compose_config([checkpoint, "formats=[timm]", "model_card.tags=birds"], "export"))
    card = (tmp_path / "run" / "export" / "timm" / "README.md").read_text()
    assert "- birds\n" in card and "- b\n" not in card


@pytest.mark.parametrize(
    ("overrides", "message"),
    [(["formats=[tflite]"], "unknown 'tflite'; choose from"), (["formats=[]"], "none given")],
)
def test_unknown_formats_are_refused(exported, compose_config, tmp_path, overrides, message):
    config = compose_config([f"ckpt_path={exported['results']['checkpoint']}", *overrides], "export")
    with pytest.raises(ConfigurationError, match=message):
        export(config)


@pytest.mark.parametrize(
    ("content", "message"),
    [("text", "cannot be read as a checkpoint"), ("state dict", "not a checkpoint of this project")],
)
def test_a_file_that_is_not_a_checkpoint_of_this_project_is_refused(
    compose_config, tmp_path, content, message
):
    other = tmp_path / "weights.ckpt"
    if content == "text":
        other.write_text("not a checkpoint")
    else:
        torch.save({"conv1.weight": torch.zeros(1)}, other)
    with pytest.raises(ConfigurationError, match=message):
        export(compose_config([f"ckpt_path={other}"], "export"))
    assert not (tmp_path / "run" / "export").exists()


def test_an_export_that_fails_its_check_leaves_nothing(exported, compose_config, tmp_path, monkeypatch):
    from {{ cookiecutter.package }} import exporting

    monkeypatch.setattr(exporting, "TOLERANCE", -1.0)  # no export can pass
    output = tmp_path / "out"
    config = compose_config(
        [f"ckpt_path={exported['results']['checkpoint']}", f"output_dir={output}", "formats=[pt2]"], "export"
    )
    with pytest.raises(ConfigurationError, match="differs from the PyTorch model"):
        export(config)
    assert list(output.iterdir()) == []  # no pt2/, no staging folder


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["test_vit", "test_convnext"])
def test_transformer_and_convnext_backbones_export_within_tolerance(tmp_path, compose_config, backbone):
    checkpoint = trained_checkpoint(tmp_path / "train", backbone)
    config = compose_config([f"ckpt_path={checkpoint}", "formats=[onnx,pt2]"], "export")
    exports = export(config)["exports"]
    assert all(values["max_abs_diff"] < 1e-4 for values in exports.values())


def test_export_from_the_command_line(exported, tmp_path):
    result = run_script(
        "export.py",
        f"ckpt_path={exported['results']['checkpoint']}",
        "formats=[timm]",
        "hydra.run.dir=run",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "export" / "timm" / "model.safetensors").is_file()
    assert "timm (max abs diff" in result.stdout
