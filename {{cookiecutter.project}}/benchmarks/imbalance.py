"""What each remedy for class imbalance does: macro-F1 and the rare classes' recall on imbalanced digits.

Writes the bundled digits as an image folder (train/, val/, test/: the digits data module's split,
split_seed 0) in which the digits `--rare` keep a tenth (`--keep`) of their training and validation
images; the test split keeps all its images, so the rare classes' recall is measured on as many
images as the others'. Then trains with `python train.py` (the same seeds and epochs) for each remedy:

    none            plain cross-entropy
    class_weights   model.class_weights=auto
    sampler         data.weighted_sampler=true
    focal           model.loss=focal (gamma 2)

and prints a Markdown table of the means over seeds.

    python benchmarks/imbalance.py
    python benchmarks/imbalance.py --seeds 1 2 3 --epochs 10 --backbone resnet10t
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from {{ cookiecutter.package }}.data.digits import load_digits
from {{ cookiecutter.package }}.data.splits import stratified_split

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REMEDIES = {
    "none": [],
    "class_weights": ["model.class_weights=auto"],
    "sampler": ["data.weighted_sampler=true"],
    "focal": ["model.loss=focal"],
}
RARE = (5, 6, 7, 8, 9)
# The digits config's input: 8x8 digits at 32 px, the whole image, no flips (a mirrored 2 is no 2).
DIGITS_INPUT = ["data.image_size=32", "data.crop_pct=1.0", "data.augment=none"]


def write_imbalanced_digits(root: Path, rare: Sequence[int] = RARE, keep: float = 0.1) -> None:
    """Write root/{train,val,test}/<digit>/<n>.png, the `rare` digits cut to `keep` in train and val."""
    images, labels = load_digits()
    rng = np.random.default_rng(0)
    for split, indices in stratified_split(labels, 0.15, 0.15, seed=0).items():
        for digit in range(10):
            chosen = indices[labels[indices] == digit]
            if digit in rare and split != "test":
                chosen = rng.permutation(chosen)[: max(1, round(keep * len(chosen)))]
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                Image.fromarray(images[index]).save(folder / f"{index:04d}.png")


def rare_recall(results: dict, rare: Sequence[int]) -> float:
    """Mean test recall of the rare digits, from the per-class metrics in results.json."""
    classes = results["test_per_class"]["classes"]
    return float(np.mean([classes[str(digit)]["recall"] for digit in rare]))


def train(root: Path, overrides: list[str], seed: int, epochs: int, backbone: str, workdir: Path) -> dict:
    run_dir = workdir / f"run_{len(list(workdir.iterdir()))}"
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "data=image_folder",
        f"data.root={root}",
        *DIGITS_INPUT,
        f"model.backbone={backbone}",
        f"trainer.max_epochs={epochs}",
        f"seed={seed}",
        f"hydra.run.dir={run_dir}",
        "callbacks.progress_bar=null",
        *overrides,
    ]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((run_dir / "results.json").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="(default: 1 2 3)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default: 10)")
    parser.add_argument("--backbone", default="resnet10t", help="timm model name (default: %(default)s)")
    parser.add_argument("--rare", type=int, nargs="+", default=list(RARE), help="the cut digits")
    parser.add_argument("--keep", type=float, default=0.1, help="part of the rare digits kept (default: 0.1)")
    parser.add_argument("--remedies", nargs="+", default=list(REMEDIES), choices=list(REMEDIES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        root, workdir = Path(temporary) / "digits", Path(temporary) / "runs"
        workdir.mkdir()
        write_imbalanced_digits(root, args.rare, args.keep)
        rows = []
        for remedy in args.remedies:
            overrides = REMEDIES[remedy]
            runs = [train(root, overrides, seed, args.epochs, args.backbone, workdir) for seed in args.seeds]
            f1 = [run["metrics"]["test/f1_macro"] for run in runs]
            recall = [rare_recall(run, args.rare) for run in runs]
            rows.append((remedy, np.mean(f1), np.std(f1), np.mean(recall), np.std(recall)))
            print(f"{remedy}: f1_macro {f1}, rare recall {recall}", flush=True)
    print(f"\n{args.backbone}, {args.epochs} epochs, seeds {args.seeds}: mean (std over seeds)\n")
    print("| remedy | test macro-F1 | recall of the rare digits |\n|---|---|---|")
    for remedy, f1_mean, f1_std, recall_mean, recall_std in rows:
        print(f"| {remedy} | {f1_mean:.3f} ({f1_std:.3f}) | {recall_mean:.3f} ({recall_std:.3f}) |")


if __name__ == "__main__":
    main()
