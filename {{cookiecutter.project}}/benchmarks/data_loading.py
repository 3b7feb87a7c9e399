"""Does the image-folder pipeline keep the model fed? Loader images/s against training images/s.

Builds a synthetic image folder (PNGs, `--image-size` px, `--classes` classes) in a temporary
directory and measures, in one process:

- loader: images/s of the project's real ImageFolderDataModule train loader (decode, timm train
  transforms at the default augment=light, collate), at the default settings (num_workers=null,
  which is 0 without an accelerator), with 0 and 2 workers, and with cache_images=true;
- training: images/s of the training step alone (forward, backward, AdamW step) of `--backbone` on
  ready-made batches of the same size;
- end to end: the loader feeding the training step, with 0 and 2 workers, since on a CPU the
  workers compete with the model for the same cores.

The loader keeps the model fed when its rate is well above the training rate (ratio > 1). Other
work on the machine distorts the figures; the ratios, measured in the same run, distort less.

    python benchmarks/data_loading.py
    python benchmarks/data_loading.py --backbone resnet50 --image-size 224 --images 1000 --device cuda
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image

from {{ cookiecutter.package }}.data import ImageFolderDataModule
from {{ cookiecutter.package }}.models import backbone_preprocessing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18", help="timm model name (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=64, help="image and input side in px (default: 64)")
    parser.add_argument("--images", type=int, default=2000, help="images in the folder (default: 2000)")
    parser.add_argument("--classes", type=int, default=10, help="class folders (default: 10)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per measurement (default: 20)")
    parser.add_argument("--device", default="cpu", help="device of the training step (default: cpu)")
    return parser.parse_args(argv)


def write_folder(root: Path, images: int, classes: int, side: int) -> None:
    """Smooth random colour fields with noise: PNGs that compress like photos more than like noise."""
    rng = np.random.default_rng(0)
    for index in range(images):
        folder = root / f"class_{index % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC)
        noisy = np.asarray(image, dtype=np.int16) + rng.integers(-8, 9, (side, side, 3))
        Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(folder / f"{index:05d}.png")


class QuietImageFolder(ImageFolderDataModule):
    def report_class_counts(self) -> None:  # one table per measured loader would bury the figures
        pass


def loader_for(root: Path, args: argparse.Namespace, **settings) -> torch.utils.data.DataLoader:
    datamodule = QuietImageFolder(
        root=root, image_size=args.image_size, batch_size=args.batch_size, bad_files_list=None, **settings
    )
    datamodule.use_preprocessing(backbone_preprocessing(args.backbone, datamodule.preprocessing_overrides))
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def timed_batches(loader, count: int, step=None) -> float:
    """Images/s over `count` batches after one warm-up batch (worker start-up and caches excluded)."""
    batches = iter(loader)
    images, labels = next(batches)
    if step:
        step(images, labels)
    seen, started = 0, time.perf_counter()
    for _ in range(count):
        try:
            images, labels = next(batches)
        except StopIteration:
            batches = iter(loader)
            images, labels = next(batches)
        if step:
            step(images, labels)
        seen += len(images)
    return seen / (time.perf_counter() - started)


def training_step(args: argparse.Namespace):
    device = torch.device(args.device)
    model = timm.create_model(args.backbone, num_classes=args.classes).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        loss = F.cross_entropy(model(images.to(device, non_blocking=True)), labels.to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(
        f"{args.images} PNGs of {args.image_size} px, {args.classes} classes, batch {args.batch_size}, "
        f"{args.backbone} on {args.device}, torch threads {torch.get_num_threads()}"
    )
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write_folder(root, args.images, args.classes, args.image_size)
        loaders = {
            "default (num_workers=null -> 0 here)": {},
            "num_workers=0": {"num_workers": 0},
            "num_workers=2": {"num_workers": 2},
            "cache_images=true": {"cache_images": True, "num_workers": 0},
        }
        rates = {}
        for name, settings in loaders.items():
            rates[name] = timed_batches(loader_for(root, args, **settings), args.batches)
        step = training_step(args)
        batch = next(iter(loader_for(root, args, num_workers=0)))
        train_rate = timed_batches([batch] * (args.batches + 1), args.batches, step)
        end_to_end = {
            workers: timed_batches(loader_for(root, args, num_workers=workers), args.batches, step)
            for workers in (0, 2)
        }
    print(f"\n{'loader':<40} {'img/s':>8} {'x training':>11}")
    for name, rate in rates.items():
        print(f"{name:<40} {rate:>8.0f} {rate / train_rate:>10.1f}x")
    print(f"\n{'training step alone (' + args.backbone + ')':<40} {train_rate:>8.0f}")
    for workers, rate in end_to_end.items():
        print(f"{f'loader + training, num_workers={workers}':<40} {rate:>8.0f} {rate / train_rate:>10.2f}x")
    default_rate = rates["default (num_workers=null -> 0 here)"]
    verdict = "keeps" if default_rate > train_rate else "does NOT keep"
    print(
        f"\nAt the default settings the loader {verdict} the model fed: it serves {default_rate:.0f} img/s, "
        f"the training step takes {train_rate:.0f} img/s ({default_rate / train_rate:.1f}x)."
    )


if __name__ == "__main__":
    main()
