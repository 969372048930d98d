"""The web page in a real browser: Debian's chromium, driven by Playwright, against the server.

The server runs as its own process (``python -m deepinsight.serve``) on a free loopback port with
a freshly trained tiny checkpoint. The page must show what ``POST /predict`` answers for the same
file, load the Grad-CAM heatmap, show the server's error message, and keep working after it.
No browser is downloaded: without chromium or the playwright package the tests are skipped.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.inference_fixtures import ONE_THREAD_ENV

CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no `chromium` on PATH: the browser test needs Debian's chromium "
        "(apt-get install chromium); Playwright's own browsers are never downloaded",
    ),
]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install -e '.[dev]')",
)

STARTUP_DEADLINE_S = 180  # loading torch and the checkpoint on a slow 2-core machine
PAGE_TIMEOUT_MS = 60_000  # one upload, scored with a heatmap, on a slow machine


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """End the server and the worker processes it started (its own process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def wait_until_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Poll ``/health`` until it answers 200; fail at once if the server exits."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        try:  # the pause between polls, which also notices a server that died
            code = proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the server exited with code {code}:\n{log.read_text()[-3000:]}")
    pytest.fail(f"no answer from {url}health in {STARTUP_DEADLINE_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tiny_trained_run: Path, tmp_path_factory) -> Iterator[str]:
    """The base URL of ``python -m deepinsight.serve`` serving the tiny run's best checkpoint."""
    ckpt = tiny_trained_run / "checkpoints" / "best.ckpt"
    workdir = tmp_path_factory.mktemp("serve")
    log = workdir / "server.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deepinsight.serve", f"ckpt={ckpt}", "host=127.0.0.1",
             f"port={port}"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=ONE_THREAD_ENV,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_until_healthy(proc, url, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on ``/``, failing the test on any script error or request to another host."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    problems: list[str] = []

    def outside(request) -> None:  # the page works offline: no CDN, fonts or other hosts
        if not request.url.startswith((server, "data:", "blob:")):
            problems.append(f"request outside the server: {request.url}")

    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on("request", outside)
    page.goto(server)
    page.wait_for_function("document.getElementById('model').textContent !== 'loading…'")
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture(scope="module")
def demo_image(tiny_dataset: Path) -> Path:
    return tiny_dataset / "test" / "fake" / "fake_000.png"


def api_predict(server: str, path: Path, cam: bool = False) -> httpx.Response:
    with path.open("rb") as handle:
        files = {"file": (path.name, handle, "application/octet-stream")}
        return httpx.post(f"{server}predict?cam={str(cam).lower()}", files=files, timeout=60)


def wait_for_state(page, state: str) -> None:
    """Wait until the page has finished (done or error) and check that it ended in ``state``."""
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached")
    ended = page.evaluate("document.body.dataset.state")
    assert ended == state, f"the page ended in {ended!r}: {page.text_content('#error')!r}"


def read_result(page) -> dict[str, object]:
    return {
        "verdict": page.text_content("#verdict"),
        "score_text": page.text_content("#score"),
        "score": float(page.get_attribute("#score", "data-value")),
        "threshold": float(page.text_content("#threshold")),
    }


def test_page_shows_what_the_api_answers_with_the_heatmap(page, server, demo_image):
    info = httpx.get(server + "info", timeout=10).json()
    assert page.text_content("#model") == info["model"]
    assert page.evaluate("document.body.dataset.state") == "idle"
    assert page.is_hidden("#error")

    page.check("#cam-toggle")
    page.set_input_files("#file-input", str(demo_image))
    wait_for_state(page, "done")

    expected = api_predict(server, demo_image).json()
    shown = read_result(page)
    assert shown["verdict"] == expected["prediction"].upper()
    assert abs(shown["score"] - expected["score"]) < 1e-5
    assert shown["score_text"] == f"{expected['score']:.4f}"
    assert abs(shown["threshold"] - expected["threshold"]) < 5e-5
    assert page.is_visible("#verdict") and page.is_hidden("#error")
    # The heatmap is a decoded image at least 256 px wide; the preview shows the upload.
    assert page.is_visible("#heatmap")
    assert page.eval_on_selector("#heatmap", "img => img.complete && img.naturalWidth") >= 256
    page.wait_for_function("document.getElementById('preview').naturalWidth === 32")
    assert page.get_attribute("#heatmap", "alt")

    # Switching the heatmap off re-scores the same image without one.
    page.uncheck("#cam-toggle")
    wait_for_state(page, "done")
    assert page.is_hidden("#heatmap")
    assert abs(read_result(page)["score"] - expected["score"]) < 1e-5


def test_dropped_file_is_scored(page, server, tiny_dataset):
    image = tiny_dataset / "test" / "real" / "real_000.png"
    expected = api_predict(server, image).json()
    page.evaluate(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const zone = document.getElementById("drop-zone");
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true }));
        }""",
        [image.name, base64.b64encode(image.read_bytes()).decode()],
    )
    wait_for_state(page, "done")
    assert abs(read_result(page)["score"] - expected["score"]) < 1e-5
    assert page.text_content("#filename") == image.name


def test_server_error_is_shown_and_the_page_recovers(page, server, demo_image, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is not an image\n")
    answer = api_predict(server, text_file)
    assert 400 <= answer.status_code < 500, answer.text
    message = answer.json()["error"]
    assert message and "\n" not in message

    page.set_input_files("#file-input", str(text_file))
    wait_for_state(page, "error")
    assert page.is_visible("#error")
    assert page.text_content("#error") == message
    assert page.is_hidden("#verdict")

    # The next upload is scored as usual and the error box goes away.
    page.set_input_files("#file-input", str(demo_image))
    wait_for_state(page, "done")
    assert page.is_hidden("#error")
    assert abs(read_result(page)["score"] - api_predict(server, demo_image).json()["score"]) < 1e-5
