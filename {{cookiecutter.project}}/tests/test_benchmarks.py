"""The benchmark scripts still run and print their figures (tiny settings; no timing is asserted)."""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterator
from types import ModuleType

import pytest
import torch

from conftest import PROJECT_ROOT

# One thread: two threads on a busy 2-core machine stall for up to a second a step.
TINY = ["--backbone", "test_resnet", "--image-size", "32", "--batch-size", "8"]
TINY += ["--steps", "2", "--repeats", "2", "--threads", "1"]
NUMBER = r"(\d+\.\d+)"


@pytest.fixture
def throughput() -> Iterator[ModuleType]:
    """benchmarks/throughput.py as a module, with the process settings its main() changes restored after.

    torch.compile's caches are cleared before and after, so that no other test finds this one's
    compiled graphs (or the other way round).
    """
    torch._dynamo.reset()
    spec = importlib.util.spec_from_file_location("throughput", PROJECT_ROOT / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    loggers = {name: logging.getLogger(name).level for name in ("lightning.pytorch", "lightning.fabric")}
    matmul_precision = torch.get_float32_matmul_precision()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)
    torch.set_float32_matmul_precision(matmul_precision)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch._dynamo.reset()


def assert_ratios_and_spread_printed(output: str, repeats: int) -> None:
    for per_repetition, spread_line in [
        (rf"repetition \d+: .* \| ratio {NUMBER}", "lightning/plain per repetition"),
        (
            rf"repetition \d+: .* \| median step ratio {NUMBER}",
            "median step time plain/lightning per repetition",
        ),
    ]:
        ratios = [float(ratio) for ratio in re.findall(per_repetition, output)]
        assert len(ratios) == repeats, output
        spread = re.search(rf"{spread_line}: median {NUMBER}, min {NUMBER}, max {NUMBER}", output)
        assert spread, output
        median, low, high = map(float, spread.groups())
        assert low == pytest.approx(min(ratios), abs=1e-3) and high == pytest.approx(max(ratios), abs=1e-3)
        assert low <= median <= high
    assert re.search(rf"plain {NUMBER} img/s \| lightning {NUMBER} img/s \| ratio {NUMBER}", output), output


def test_throughput_prints_each_repetitions_ratio_and_their_spread(throughput, capsys):
    assert throughput.main(TINY) == 0
    assert_ratios_and_spread_printed(capsys.readouterr().out, repeats=2)


def test_throughput_compiles_both_paths_and_counts_recompilations(throughput, capsys):
    from torch._dynamo.utils import counters

    counters.clear()
    # The eager backend goes through torch.compile's graph capture without inductor's minute-long build.
    assert throughput.main([*TINY, "--compile", "--compile-backend", "eager", "--warmup-steps", "1"]) == 0
    output = capsys.readouterr().out
    assert_ratios_and_spread_printed(output, repeats=2)
    assert "compiled (eager, mode None)" in output
    graphs = re.search(r"compiled graphs after the warm-up: (\d+) \(both models compiled: True\)", output)
    assert graphs and int(graphs.group(1)) >= 1, output
    assert re.search(r"compiled graphs at the end: \d+ \(0 compiled during the repetitions\)", output), output


def test_throughput_refuses_a_warm_up_as_long_as_the_run(throughput, capsys):
    with pytest.raises(SystemExit):
        throughput.parse_args(["--steps", "2", "--warmup-steps", "2"])
    assert "--warmup-steps must be at least 0 and less than --steps" in capsys.readouterr().err
