"""Baseline for the template's wall time: the plain PyTorch + timm script a user would write by hand.

It trains the model of a freshly generated project's default run on the same data: timm's resnet10t
from scratch on the handwritten digits bundled with the project (`digits.npz`: 1,797 images of 8x8
pixels with 16 grey levels), upsampled to 32 px and normalised with the ImageNet mean and std, with
the project's stratified 70/15/15 split (seed 0, so the test images are the same), AdamW (lr 2e-3,
weight decay 0.05) under a one-cycle schedule, 10 epochs of batch 64, a validation pass after each
epoch, then the test accuracy. Unlike the project it resizes every image once up front and does no
augmentation, logging, checkpointing or config handling. It runs offline on the CPU.

    python benchmarks/plain_timm_digits.py --digits <project>/src/<package>/data/digits.npz
    /usr/bin/time -f %e python benchmarks/plain_timm_digits.py --digits <project>

The printed time runs from the start of `main()`, before torch and timm are imported; `/usr/bin/time`
adds the interpreter's own start-up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DIGITS_FILE = "digits.npz"
GREY_LEVELS = 16
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def find_digits(path: Path) -> Path:
    """Return `path` if it is a file, else the first digits.npz found under the directory `path`."""
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(path.rglob(DIGITS_FILE))
        if found:
            return found[0]
    raise SystemExit(f"No {DIGITS_FILE} at or under {path}; pass --digits <project>/src/<package>/data/.")


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """The project's split: per class, a seeded permutation gives val, then test, then train indices."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in np.unique(labels):
        indices = rng.permutation(np.flatnonzero(labels == label))
        n_val = round(len(indices) * val_fraction)
        n_test = round(len(indices) * test_fraction)
        parts["val"].append(indices[:n_val])
        parts["test"].append(indices[n_val : n_val + n_test])
        parts["train"].append(indices[n_val + n_test :])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--digits",
        type=Path,
        default=Path("."),
        help=f"{DIGITS_FILE}, or a directory searched for it (default: the current directory)",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="split and training seed (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    return parser.parse_args()


def main() -> int:
    started = time.perf_counter()
    args = parse_args()
    digits = find_digits(args.digits)
    # Imported here so that the printed time includes importing them.
    import timm
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    with np.load(digits) as arrays:
        images, labels = arrays["images"], arrays["labels"].astype(np.int64)
    pixels = torch.from_numpy(images.astype(np.float32) / GREY_LEVELS).unsqueeze(1)  # (N, 1, 8, 8) in 0..1
    size = (args.image_size, args.image_size)
    pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    pixels = ((pixels - mean) / std).contiguous()
    targets = torch.from_numpy(labels)
    splits = stratified_split(labels, 0.15, 0.15, args.seed)
    data = {name: (pixels[index], targets[index]) for name, index in splits.items()}

    train_loader = DataLoader(
        TensorDataset(*data["train"]), batch_size=args.batch_size, shuffle=True, drop_last=True
    )
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(train_loader)
    )

    @torch.no_grad()
    def accuracy(split: str) -> float:
        model.eval()
        x, y = data[split]
        predictions = torch.cat([model(chunk).argmax(dim=1) for chunk in x.split(256)])
        return (predictions == y).float().mean().item()

    print(
        f"{digits}: {len(targets)} images, train/val/test {len(splits['train'])}/{len(splits['val'])}/"
        f"{len(splits['test'])}; resnet10t at {args.image_size} px, {torch.get_num_threads()} CPU threads"
    )
    for epoch in range(args.epochs):
        model.train()
        total_loss = 0.0
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item()
        print(
            f"epoch {epoch + 1:2d}/{args.epochs}: train loss {total_loss / len(train_loader):.4f}, "
            f"val acc {accuracy('val'):.4f}  ({time.perf_counter() - started:.1f} s)"
        )
    test_accuracy = accuracy("test")
    print(f"test acc {test_accuracy:.4f} | wall time {time.perf_counter() - started:.1f} s (from main())")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
