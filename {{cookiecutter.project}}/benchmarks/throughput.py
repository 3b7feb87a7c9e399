"""Training throughput of the project's Lightning path against a hand-written PyTorch loop.

Both paths train the same timm model (same architecture and initial weights) on the same pre-built,
in-memory batches of the bundled digits, in one process, so the difference between them is the cost
of the training framework and of this project's LightningModule, not of data loading:

- plain: `model.train()`, forward, `F.cross_entropy`, backward, `optimizer.step()`, `zero_grad()`,
  with the optimizer from the project's `build_optimizer` (AdamW, lr 2e-3, weight decay 0.05).
- lightning: the project's `ImageClassifier` fitted by a `lightning.pytorch.Trainer` on a DataLoader
  over the same list of batches, with checkpointing, logger, progress bar, model summary and
  validation turned off. Everything else runs as in a user's run: the torchmetrics updates of every
  training step, Lightning's optimizer closure, the epoch-end metric compute and logging.

Each repetition trains `--steps` batches with a new optimizer in both paths (a fit() builds one), so
both pay AdamW's state initialisation on their first step unless `--warmup-steps` leaves the first
steps of every run untimed. The Lightning figure is timed from `on_train_start` (or the start of the
first timed step) to `on_train_end` (every step plus the epoch's end); the whole `trainer.fit()`
call, which also sets up and tears down the trainer once per run, is printed beside it. After a
warm-up of both, the repetitions alternate, which path goes first swapping every repetition, because
a shared machine's speed drifts. Each repetition prints its lightning/plain ratio of throughputs and
the ratio of the two paths' median step times (each step timed from the end of the one before, so
Lightning's work between steps counts; a step slowed down by other work on the machine counts once);
the end prints the ratio of the medians and the median, min and max of each per-repetition ratio (the
spread). Other work on the machine distorts the figures (two processes that each use every core slow
each other down many times over).

`--compile` compiles both models in place with `torch.compile` (the project's path is
`ImageClassifier(compile=True)`, which compiles in `setup()` as `model.compile=true` does); the
compilation happens in the untimed warm-up, and the count of compiled graphs is printed after the
warm-up and at the end, so a recompilation inside the timed repetitions shows.

On CUDA: the pre-built batches stay on the device for the whole run (their size is printed; resnet50
at 224 px, batch 256, 30 steps: 4.6 GB in float32), so no host-to-device copy is timed. Lightning
moves the module to the CPU and empties the CUDA cache at the end of every fit(), so before every
run of either path the cache is emptied too and both start from the same allocator state; use
`--warmup-steps` to keep the first steps' allocations out of the timed window. The peak memory
allocated (`torch.cuda.max_memory_allocated`, reset before every run) is printed for each path: it
includes the batches and the other path's model weights, and Lightning's path also holds the previous
step's gradients during the forward pass (its closure zeroes them just before `backward`).

Run it from the project's root after `pip install -e .`:

    python benchmarks/throughput.py
    python benchmarks/throughput.py --device cuda --precision bf16-mixed --channels-last --batch-size 256
    python benchmarks/throughput.py --backbone convnext_atto --threads 2 --repeats 5
    python benchmarks/throughput.py --device cuda --backbone resnet50 --image-size 224 --batch-size 256 \
        --precision bf16-mixed --channels-last --compile --warmup-steps 5 --steps 50
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time
import warnings
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader

from {{ cookiecutter.package }}.data.digits import load_digits
from {{ cookiecutter.package }}.finetune import parameter_groups
from {{ cookiecutter.package }}.models import ImageClassifier, backbone_preprocessing, create_network
from {{ cookiecutter.package }}.optim import build_optimizer
from {{ cookiecutter.package }}.run.allocator import keep_freed_memory_for_reuse

OPTIMIZER = {"opt": "adamw", "lr": 2e-3, "weight_decay": 0.05}
CLASS_NAMES = [str(digit) for digit in range(10)]
PRECISIONS = ("32-true", "bf16-mixed")

Batch = tuple[torch.Tensor, torch.Tensor]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet10t", help="timm model name (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=32, help="square input side in px (default: 32)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    parser.add_argument("--steps", type=int, default=30, help="training steps per repetition (default: 30)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each path (default: 3)")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="steps at the start of every run left out of the timed window (default: 0)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="default: cuda when available, else cpu",
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="32-true", help="default: 32-true")
    parser.add_argument("--channels-last", action="store_true", help="channels-last model and inputs")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile both models in place (model.compile=true)"
    )
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (model.compile_mode)")
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend (model.compile_backend)"
    )
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="torch.backends.cudnn.benchmark=True for both paths (+trainer.benchmark=true; train.py leaves "
        "it at torch's default, off)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's malloc at its defaults instead of tuning it as train.py does (keep_freed_memory)",
    )
    args = parser.parse_args(argv)
    for name in ("image_size", "batch_size", "steps", "repeats", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup_steps < 0 or args.warmup_steps >= args.steps:
        parser.error("--warmup-steps must be at least 0 and less than --steps")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    return args


def make_batches(args: argparse.Namespace, preprocessing: dict, device: torch.device) -> list[Batch]:
    """Return `steps` normalised RGB batches of the digits at the model's input size, on `device`."""
    images, labels = load_digits()
    pixels = torch.from_numpy(images).float().div_(255).unsqueeze(1)  # (N, 1, 8, 8)
    size = (args.image_size, args.image_size)
    pixels = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False)
    mean = torch.tensor(preprocessing["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing["std"]).view(1, 3, 1, 1)
    pixels = (pixels.expand(-1, 3, -1, -1) - mean) / std
    targets = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(0)
    epochs = args.steps * args.batch_size // len(targets) + 1
    order = torch.cat([torch.randperm(len(targets), generator=generator) for _ in range(epochs)])
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    batches = []
    for step in range(args.steps):
        index = order[step * args.batch_size : (step + 1) * args.batch_size]
        x = pixels[index].to(device).contiguous(memory_format=memory_format)
        batches.append((x, targets[index].to(device)))
    return batches


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start_from_empty_cache(device: torch.device) -> None:
    """On CUDA, free cached blocks and reset the peak-memory counter (as Lightning leaves it after a fit)."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> int:
    """Bytes allocated at the peak since the last `start_from_empty_cache` (0 off CUDA)."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


def compiled_graphs() -> int:
    """How many graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def is_compiled(model: torch.nn.Module) -> bool:
    """Whether `model.compile()` has been called on `model` (nn.Module keeps the compiled call there)."""
    return getattr(model, "_compiled_call_impl", None) is not None


def gib(size: int) -> str:
    return f"{size / 2**30:.2f} GiB"


class PlainLoop:
    """The loop a user would write by hand around the same model and optimizer."""

    def __init__(
        self, model: torch.nn.Module, device: torch.device, precision: str, warmup_steps: int
    ) -> None:
        self.model = model
        self.device = device
        self.precision = precision
        self.warmup_steps = warmup_steps

    def autocast(self):
        if self.precision == "bf16-mixed":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def run(self, batches: list[Batch]) -> tuple[float, list[float]]:
        """Train one pass over `batches` with a new optimizer, as each fit() has; return the timed
        seconds and the seconds of each timed step."""
        optimizer = build_optimizer(parameter_groups(self.model, OPTIMIZER["weight_decay"]), **OPTIMIZER)
        self.model.train()
        clock = StepClock(self.device)
        for step, (images, targets) in enumerate(batches):
            if step == self.warmup_steps:
                synchronize(self.device)
                started = time.perf_counter()
                clock.mark()
            with self.autocast():
                logits = self.model(images)
                loss = F.cross_entropy(logits, targets)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= self.warmup_steps:
                clock.mark()
        synchronize(self.device)
        return time.perf_counter() - started, clock.step_seconds()


class StepClock:
    """When each timed step ended, without making a GPU wait for the host after every step (which
    would stop it queueing work ahead): CUDA events on a GPU, the host's clock on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.marks: list = []

    def mark(self) -> None:
        """Mark the start of the first timed step, then the end of each."""
        if self.device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def step_seconds(self) -> list[float]:
        """The seconds of each step; on a GPU, call it once the device is synchronised."""
        pairs = zip(self.marks[:-1], self.marks[1:], strict=True)
        if self.device.type == "cuda":
            return [start.elapsed_time(end) / 1000 for start, end in pairs]  # milliseconds
        return [end - start for start, end in pairs]


class TrainTimer(Callback):
    """Times a fit from `on_train_start` (or the start of step `warmup_steps`) to `on_train_end`,
    and each timed step: from the end of the one before (Lightning's work between steps included)."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.started = self.seconds = 0.0
        self.clock: StepClock | None = None

    def start(self, device: torch.device) -> None:
        synchronize(device)
        self.started = time.perf_counter()
        self.clock = StepClock(device)
        self.clock.mark()

    def on_train_start(self, trainer, pl_module) -> None:
        if self.warmup_steps == 0:
            self.start(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.warmup_steps > 0 and batch_idx == self.warmup_steps:
            self.start(pl_module.device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx >= self.warmup_steps:
            self.clock.mark()

    def on_train_end(self, trainer, pl_module) -> None:
        synchronize(pl_module.device)
        self.seconds = time.perf_counter() - self.started


class LightningRun:
    """The project's ImageClassifier fitted by a fresh Trainer for one epoch over `batches` per run."""

    def __init__(
        self, module: ImageClassifier, device: torch.device, precision: str, warmup_steps: int
    ) -> None:
        self.module = module
        self.device = device
        self.precision = precision
        self.warmup_steps = warmup_steps

    def run(self, batches: list[Batch]) -> tuple[float, float, list[float]]:
        """Fit one epoch over `batches`; return the seconds of the training loop, of the fit() call and
        of each timed step."""
        timer = TrainTimer(self.warmup_steps)
        trainer = Trainer(
            accelerator=self.device.type,
            devices=1,
            precision=self.precision,
            max_epochs=1,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            log_every_n_steps=10,
            enable_checkpointing=False,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
        # batch_size=None: each item of the list already is a batch, so the loader does no collating.
        loader = DataLoader(batches, batch_size=None, shuffle=False)
        synchronize(self.device)
        started = time.perf_counter()
        trainer.fit(self.module, train_dataloaders=loader)
        synchronize(self.device)
        return timer.seconds, time.perf_counter() - started, timer.clock.step_seconds()


def quiet_lightning() -> None:
    """Keep the output to the figures: Lightning's per-Trainer info lines and data-loader hints."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*validation_step.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_lightning()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")  # as train.py sets it (TF32 on GPUs that have it)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    malloc = "glibc defaults"
    if not args.default_malloc and keep_freed_memory_for_reuse():  # as train.py does
        malloc = "malloc keeps freed memory"
    torch.manual_seed(0)
    device = torch.device(args.device)

    preprocessing = backbone_preprocessing(args.backbone, {"image_size": args.image_size})
    batches = make_batches(args, preprocessing, device)
    # The project's own speed switches, applied in ImageClassifier.setup() as in a user's run.
    module = ImageClassifier(
        args.backbone,
        CLASS_NAMES,
        preprocessing=preprocessing,
        channels_last=args.channels_last,
        compile=args.compile,
        compile_mode=args.compile_mode,
        compile_backend=args.compile_backend,
        optimizer=OPTIMIZER,
        scheduler={"sched": "none"},
    )
    model = create_network(args.backbone, num_classes=len(CLASS_NAMES))
    model.load_state_dict(module.model.state_dict())
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format)
    if args.compile:  # in place, as ImageClassifier.setup() compiles its model
        model.compile(mode=args.compile_mode, backend=args.compile_backend)
    module.to(device=device)
    plain = PlainLoop(model, device, args.precision, args.warmup_steps)
    lightning = LightningRun(module, device, args.precision, args.warmup_steps)

    switches = [args.device, args.precision]
    if args.channels_last:
        switches.append("channels-last")
    if args.compile:
        switches.append(f"compiled ({args.compile_backend}, mode {args.compile_mode})")
    if args.cudnn_benchmark:
        switches.append("cudnn.benchmark")
    print(
        f"{args.backbone} at {args.image_size} px, batch {args.batch_size}, {args.steps} steps "
        f"({args.warmup_steps} untimed) x {args.repeats} repetitions, {', '.join(switches)}, "
        f"{torch.get_num_threads()} CPU threads, {malloc}"
    )
    if device.type == "cuda":
        batch_bytes = sum(images.nbytes + targets.nbytes for images, targets in batches)
        print(f"{torch.cuda.get_device_name(device)}; the pre-built batches hold {gib(batch_bytes)} on it")
    # Warm-up: allocator, kernels, optimizer state, compilation, Lightning's first-fit imports.
    for warm_up in (plain, lightning):
        start_from_empty_cache(device)
        warm_up.run(batches)
    if args.compile:
        graphs_after_warmup = compiled_graphs()
        both = is_compiled(model) and is_compiled(module.model)
        print(f"compiled graphs after the warm-up: {graphs_after_warmup} (both models compiled: {both})")

    images_per_run = (args.steps - args.warmup_steps) * args.batch_size
    plain_rates, lightning_rates, fit_rates, ratios, step_ratios = [], [], [], [], []
    peaks: dict[str, list[int]] = {"plain": [], "lightning": []}
    for repetition in range(1, args.repeats + 1):
        # Which path goes first swaps every repetition, so that a drift of the machine's speed does
        # not always favour the same one.
        results = {}
        for path in ("plain", "lightning") if repetition % 2 else ("lightning", "plain"):
            start_from_empty_cache(device)
            results[path] = plain.run(batches) if path == "plain" else lightning.run(batches)
            peaks[path].append(peak_memory(device))
        plain_seconds, plain_steps = results["plain"]
        loop_seconds, fit_seconds, lightning_steps = results["lightning"]
        plain_rates.append(images_per_run / plain_seconds)
        lightning_rates.append(images_per_run / loop_seconds)
        fit_rates.append(args.steps * args.batch_size / fit_seconds)
        ratios.append(lightning_rates[-1] / plain_rates[-1])
        # The typical step: a step that a burst of other work on the machine slowed down counts once.
        step_ratios.append(statistics.median(plain_steps) / statistics.median(lightning_steps))
        print(
            f"  repetition {repetition}: plain {plain_rates[-1]:8.1f} img/s | lightning "
            f"{lightning_rates[-1]:8.1f} img/s | ratio {ratios[-1]:.3f} | median step ratio "
            f"{step_ratios[-1]:.3f} (whole fit() call {fit_rates[-1]:8.1f} img/s)",
            flush=True,
        )

    plain_rate = statistics.median(plain_rates)
    lightning_rate = statistics.median(lightning_rates)
    fit_rate = statistics.median(fit_rates)
    print(f"median over {args.repeats} repetitions:")
    print(
        f"plain {plain_rate:.1f} img/s | lightning {lightning_rate:.1f} img/s | "
        f"ratio {lightning_rate / plain_rate:.3f}"
    )
    print(
        f"lightning/plain per repetition: median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    print(
        f"median step time plain/lightning per repetition: median {statistics.median(step_ratios):.3f}, "
        f"min {min(step_ratios):.3f}, max {max(step_ratios):.3f}"
    )
    print(
        f"(whole trainer.fit() call, with its one-off set-up per {args.steps} steps: {fit_rate:.1f} img/s, "
        f"ratio {fit_rate / plain_rate:.3f})"
    )
    if device.type == "cuda":
        print(
            f"peak GPU memory allocated (max over repetitions): plain {gib(max(peaks['plain']))} | "
            f"lightning {gib(max(peaks['lightning']))}"
        )
    if args.compile:
        recompiled = compiled_graphs() - graphs_after_warmup
        print(
            f"compiled graphs at the end: {compiled_graphs()} ({recompiled} compiled during the repetitions)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
