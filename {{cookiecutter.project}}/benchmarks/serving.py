"""Requests per second and p50/p95 latency of serve.py against the same model called in-process.

Both paths start from the image file's bytes and include the decoding, the model's preprocessing, the
model and the top-k: in-process, `concurrency` threads each call them on one image at a time; against
the server, `concurrency` clients (httpx) each send one request at a time to serve.py (a separate
process on 127.0.0.1, dynamic batching on). The two alternate at each concurrency, for every round, in
one sitting; the end prints, per concurrency, the medians over rounds, the ratios server / in-process,
and the batch sizes the server formed (its X-Batch-Size header).

    python benchmarks/serving.py --ckpt-path logs/train/runs/<run>/checkpoints/<best>.ckpt
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from {{ cookiecutter.package }}.data.transforms import build_transform
from {{ cookiecutter.package }}.models import class_probabilities, top_predictions
from {{ cookiecutter.package }}.serving import decode_image, load_served_model

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def images(count: int) -> list[bytes]:
    """PNG files of photo-like sizes (random pixels), as bytes."""
    rng = np.random.default_rng(0)
    files = []
    for _ in range(count):
        width, height = (int(v) for v in rng.integers(200, 640, size=2))
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
        files.append(buffer.getvalue())
    return files


def summary(latencies: list[float], seconds: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rps": len(ordered) / seconds,
        "p50": 1000 * ordered[len(ordered) // 2],
        "p95": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
    }


def in_process(model, transform, files: list[bytes], requests: int, concurrency: int, top_k: int) -> dict:
    latencies: list[float] = []
    lock, counter = threading.Lock(), iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            image = transform(decode_image(files[index % len(files)], 25_000_000))
            with torch.inference_mode():
                top_predictions(
                    class_probabilities(model.network, image[None], False), model.class_names, top_k
                )
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summary(latencies, time.perf_counter() - started)


async def against_server(url: str, files: list[bytes], requests: int, concurrency: int) -> dict:
    latencies: list[float] = []
    batches: collections.Counter = collections.Counter()
    counter = iter(range(requests))
    async with httpx.AsyncClient(timeout=120) as http:

        async def client() -> None:
            for index in counter:
                started = time.perf_counter()
                response = await http.post(
                    f"{url}/predict", files={"image": ("image.png", files[index % len(files)], "image/png")}
                )
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                batches[int(response.headers["x-batch-size"])] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
    return {**summary(latencies, time.perf_counter() - started), "batches": batches}


def start_server(arguments, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT_ROOT / "serve.py"),
            f"ckpt_path={arguments.ckpt_path}",
            f"port={port}",
            f"max_batch_size={arguments.max_batch_size}",
            f"batch_timeout={arguments.batch_timeout}",
            "accelerator=cpu",
            "log_level=warning",
            f"hydra.run.dir={arguments.run_dir}/serve_{port}",
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    for _ in range(360):
        if process.poll() is not None:  # a bad setting: serve.py said why and ended
            raise SystemExit(f"serve.py exited with status {process.returncode} before it served")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("serve.py did not become healthy in 3 minutes")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt-path", required=True)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=256, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--batch-timeout", type=float, default=0.01)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--run-dir", default="logs/benchmarks")
    arguments = parser.parse_args()

    files = images(arguments.images)
    model = load_served_model(arguments.ckpt_path, None)
    transform = build_transform(model.preprocessing, is_training=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(arguments, port)
    url = f"http://127.0.0.1:{port}"
    results: dict = collections.defaultdict(
        lambda: {"in-process": [], "server": [], "batches": collections.Counter()}
    )
    try:
        asyncio.run(against_server(url, files, 32, 8))  # warm-up of both paths
        in_process(model, transform, files, 32, 1, arguments.top_k)
        for round_index in range(arguments.rounds):
            for concurrency in arguments.concurrency:
                order = ("in-process", "server") if round_index % 2 == 0 else ("server", "in-process")
                for path in order:
                    if path == "server":
                        measured = asyncio.run(against_server(url, files, arguments.requests, concurrency))
                        results[concurrency]["batches"].update(measured.pop("batches"))
                    else:
                        measured = in_process(
                            model, transform, files, arguments.requests, concurrency, arguments.top_k
                        )
                    results[concurrency][path].append(measured)
                    print(
                        f"round {round_index + 1} concurrency {concurrency:>2} {path:>10}: "
                        f"{measured['rps']:7.1f} req/s"
                        f", p50 {measured['p50']:6.1f} ms, p95 {measured['p95']:6.1f} ms",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(timeout=90)

    print(
        f"\ntorch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs; "
        f"medians over {arguments.rounds} rounds"
    )
    print(
        "| concurrency | in-process req/s | server req/s | ratio | in-process p50 / p95 ms | "
        "server p50 / p95 ms | "
        "server batch sizes (size: requests) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for concurrency, paths in results.items():
        median = {
            path: {key: statistics.median(m[key] for m in paths[path]) for key in ("rps", "p50", "p95")}
            for path in ("in-process", "server")
        }
        local, served = median["in-process"], median["server"]
        batches = ", ".join(f"{size}: {count}" for size, count in sorted(paths["batches"].items()))
        print(
            f"| {concurrency} | {local['rps']:.1f} | {served['rps']:.1f} | "
            f"{served['rps'] / local['rps']:.2f} | "
            f"{local['p50']:.1f} / {local['p95']:.1f} | "
            f"{served['p50']:.1f} / {served['p95']:.1f} | {batches} |"
        )


if __name__ == "__main__":
    main()
