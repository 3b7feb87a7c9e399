"""serve.py: a real server process on 127.0.0.1 answers as predict.py does, batches concurrent
requests, refuses bad ones with a 4xx and keeps serving, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from {{ cookiecutter.package }}.errors import ConfigurationError

from conftest import FAST, PROJECT_ROOT, compose_into

pytest.importorskip("litserve")
httpx = pytest.importorskip("httpx")

from {{ cookiecutter.package }}.serving import BadRequest, decode_image, serve  # noqa: E402
from {{ cookiecutter.package }}.serving.server import worker_cpu_threads  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_photos(folder: Path, count: int) -> list[Path]:
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        width, height = (int(v) for v in rng.integers(8, 60, size=2))
        path = folder / f"photo_{index:02d}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> dict:
    """A checkpoint, predict.py's answers for some photos, and serve.py serving it in its own process."""
    from {{ cookiecutter.package }}.prediction import predict
    from {{ cookiecutter.package }}.training import train

    root = tmp_path_factory.mktemp("serve")
    checkpoint = train(compose_into("train", FAST, root / "train"))["best_checkpoint"]
    photos = write_photos(root / "photos", 24)
    output = root / "predictions.jsonl"
    predict(
        compose_into(
            "predict",
            [f"ckpt_path={checkpoint}", f"inputs={root / 'photos'}", f"output={output}"],
            root / "p",
        )
    )
    expected = {
        Path(line["path"]).name: line["predictions"]
        for line in map(json.loads, output.read_text().splitlines())
    }
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROJECT_ROOT / "serve.py"),
            f"ckpt_path={checkpoint}",
            f"port={port}",
            "max_batch_size=16",
            "batch_timeout=0.05",
            "log_level=warning",
            f"hydra.run.dir={root / 'serve_run'}",
        ],
        cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"serve.py did not become healthy: {process.communicate()[0][-3000:]}")
    yield {
        "url": url,
        "process": process,
        "photos": photos,
        "expected": expected,
        "root": root,
        "port": port,
        "checkpoint": checkpoint,
    }
    if process.poll() is None:
        process.terminate()  # serve.py stops its workers on SIGTERM; SIGKILL would leave them running
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def post_image(url: str, path: Path, as_json: bool = False) -> httpx.Response:
    if as_json:
        return httpx.post(f"{url}/predict", json={"image": base64.b64encode(path.read_bytes()).decode()})
    return httpx.post(f"{url}/predict", files={"image": (path.name, path.read_bytes(), "image/png")})


def assert_same_predictions(got: list[dict], expected: list[dict]) -> None:
    assert [p["label"] for p in got] == [p["label"] for p in expected]
    assert np.allclose([p["score"] for p in got], [p["score"] for p in expected], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True], ids=["multipart", "json-base64"])
def test_answers_equal_predict_py_for_the_same_images(server, as_json):
    for path in server["photos"]:
        response = post_image(server["url"], path, as_json)
        assert response.status_code == 200, response.text
        assert_same_predictions(response.json(), server["expected"][path.name])


@pytest.mark.slow
def test_200_concurrent_requests_are_all_answered_in_batches(server):
    photos = [server["photos"][i % len(server["photos"])] for i in range(200)]

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{server['url']}/predict", files={"image": (p.name, p.read_bytes())})
                    for p in photos
                )
            )

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * 200
    for path, response in zip(photos, responses, strict=True):
        assert_same_predictions(response.json(), server["expected"][path.name])
    batch_sizes = [int(r.headers["x-batch-size"]) for r in responses]
    assert max(batch_sizes) > 1, batch_sizes


def png_bytes(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


BAD_REQUESTS = {
    "not an image": {"files": {"image": ("notes.txt", b"just some text", "text/plain")}},
    "empty body": {"content": b"", "headers": {"content-type": "application/json"}},
    "empty upload": {"files": {"image": ("empty.png", b"", "image/png")}},
    "50 megapixels": {"files": {"image": ("big.png", png_bytes((7100, 7100), "L"), "image/png")}},
    "wrong content type": {"content": b"hello", "headers": {"content-type": "text/plain"}},
    "no content type": {"content": png_bytes((10, 10))},
    "truncated PNG": {"files": {"image": ("cut.png", png_bytes((64, 64))[:60], "image/png")}},
    "JSON without image": {"json": {"picture": "abc"}},
    "JSON not base64": {"json": {"image": "!!! not base64 !!!"}},
    "broken JSON": {"content": b'{"image": ', "headers": {"content-type": "application/json"}},
    "form without image field": {"files": {"photo": ("a.png", png_bytes((10, 10)), "image/png")}},
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_a_4xx_with_a_reason_and_the_server_keeps_serving(server, case):
    response = httpx.post(f"{server['url']}/predict", **BAD_REQUESTS[case])
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    reason = response.json()["detail"]
    assert reason and "\n" not in reason
    good = server["photos"][0]
    after = post_image(server["url"], good)
    assert after.status_code == 200
    assert_same_predictions(after.json(), server["expected"][good.name])


@pytest.mark.slow
def test_a_bad_request_in_a_batch_leaves_the_others_answered(server):
    # Sent together, the good and bad requests share batches: each gets its own answer.
    photos = server["photos"][:8]

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            url = f"{server['url']}/predict"
            good = [client.post(url, files={"image": (p.name, p.read_bytes())}) for p in photos]
            bad = [client.post(url, files={"image": ("x.png", b"not a png")}) for _ in photos]
            return await asyncio.gather(*[r for pair in zip(good, bad, strict=True) for r in pair])

    responses = asyncio.run(send())
    assert [r.status_code for r in responses] == [200, 400] * 8


@pytest.mark.slow
def test_the_health_check_and_the_upload_page_answer(server):
    assert httpx.get(f"{server['url']}/health").text == "ok"
    page = httpx.get(f"{server['url']}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<input id="image" type="file"' in page.text


def browser_or_skip():
    """selenium's webdriver, or a skip where Chromium's driver is missing; under CI (CI=true, which
    .ci/run sets after installing Chromium) a failure instead, so the browser test cannot go unrun."""
    reason = None
    if not shutil.which("chromedriver"):
        reason = "needs Chromium and chromedriver (apt-get install chromium chromium-driver)"
    try:
        from selenium import webdriver
    except ModuleNotFoundError:
        reason = "needs selenium (pip install -e '.[dev]')"
    if reason and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: the browser test {reason}")
    if reason:
        pytest.skip(reason)
    return webdriver


@pytest.mark.slow
def test_the_page_in_a_headless_browser_shows_the_top_label_of_an_upload(server):
    webdriver = browser_or_skip()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    browser = webdriver.Chrome(options=options, service=service)
    try:
        browser.get(server["url"] + "/")
        photo = server["photos"][1]
        browser.find_element(By.ID, "image").send_keys(str(photo))
        items = WebDriverWait(browser, 60).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#predictions li.prediction")
        )
        shown = [item.text.split(":")[0] for item in items]
    finally:
        browser.quit()
    assert shown == [p["label"] for p in server["expected"][photo.name]]


@pytest.mark.slow
def test_the_serving_benchmark_prints_its_table(server):
    # Tiny settings against a server of its own: it runs and prints a row per concurrency, timing unasserted.
    result = subprocess.run(
        [
            sys.executable,
            str(PROJECT_ROOT / "benchmarks" / "serving.py"),
            f"--ckpt-path={server['checkpoint']}",
            "--concurrency",
            "1",
            "4",
            "--requests=8",
            "--rounds=1",
            "--images=2",
            f"--run-dir={server['root'] / 'benchmark'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\| (\d+) \| [\d.]+ \| [\d.]+ \| ([\d.]+) \|", result.stdout, flags=re.MULTILINE)
    assert [concurrency for concurrency, _ in rows] == ["1", "4"], result.stdout
    assert all(float(ratio) > 0 for _, ratio in rows)


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_workers_with_exit_code_0(server):
    # The last test of this module: it stops the shared server.
    process = server["process"]
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output[-3000:]
    with socket.socket() as probe:  # no worker listens on the port any more (TIME_WAIT is no listener)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server["port"]))
    assert (server["root"] / "serve_run" / "results.json").is_file()


def test_an_image_over_max_pixels_is_refused_from_its_header_alone():
    with pytest.raises(BadRequest, match=r"7100x7100 \(50.4 megapixels\)") as refusal:
        decode_image(png_bytes((7100, 7100), "L"), max_pixels=25_000_000)
    assert refusal.value.status == 413


def test_a_truncated_png_is_refused_as_undecodable():
    with pytest.raises(BadRequest, match="cannot be decoded"):
        decode_image(png_bytes((64, 64))[:60], max_pixels=25_000_000)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "give exactly one"),
        (["ckpt_path=a.ckpt", "model_dir=b"], "give exactly one"),
        (["model_dir=nowhere"], "holds no config.json"),
        (["ckpt_path=a.ckpt", "host=example.com"], "LitServe binds to one of"),
        (["ckpt_path=a.ckpt", "port=80"], "use a port from 1024"),
        (["ckpt_path=a.ckpt", "cpu_threads=0"], "cpu_threads=0: use a positive number"),
    ],
)
def test_bad_settings_are_refused_before_a_server_starts(compose_config, overrides, message):
    with pytest.raises(ConfigurationError, match=message):
        serve(compose_config(overrides, "serve"))


@pytest.mark.parametrize(
    ("cores", "overrides", "threads"),
    [(4, [], 3), (4, ["workers_per_device=2"], 1), (2, [], 1), (1, [], 1), (4, ["cpu_threads=2"], 2)],
)
def test_a_cpu_worker_leaves_a_core_to_the_http_process(
    compose_config, monkeypatch, cores, overrides, threads
):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert worker_cpu_threads(compose_config(["ckpt_path=a.ckpt", *overrides], "serve")) == threads
