"""What a run shows before it trains: the groups it chose in one line, and a model summary that counts."""

from __future__ import annotations

import re

from conftest import FAST, run_script


def test_a_run_names_its_config_in_one_line_and_counts_the_models_flops(tmp_path):
    with_summary = [override for override in FAST if not override.startswith("callbacks.model_summary")]
    result = run_script(
        "train.py", *with_summary, "trainer.max_epochs=1", "test=false", "hydra.run.dir=run", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    saved = tmp_path / "run" / "config.yaml"
    [line] = [line for line in output.splitlines() if "Config: " in line]
    assert line.endswith(
        "Config: data=digits model=classifier optimizer=adamw scheduler=cosine finetune=full trainer=cpu "
        f"callbacks=default ema=none logger={{ cookiecutter.logger }} paths=default; every value in {saved}"
    )
    assert "model:" not in output  # no config tree: the values are in config.yaml
    assert line in (tmp_path / "run" / "train.log").read_text()
    flops = re.search(r"Total FLOPs: ([\d.]+) ([KMG]?)", output)
    assert flops is not None and float(flops.group(1)) > 0, output
