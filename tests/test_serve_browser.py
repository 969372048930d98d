"""The web page in a real browser: Debian's chromium, driven by Playwright, against the server.

The server runs as its own process (``python -m deepinsight.serve``) on a free loopback port with
a freshly trained tiny checkpoint. The page must show what ``POST /predict`` answers for the same
file, load the Grad-CAM heatmap, show the server's error message, and keep working after it.
A second server, on a model trained on aligned faces, checks that the faces of a real photograph
are outlined and listed, and that a picture without a face is refused on the page.
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
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from helpers.face_pictures import astronaut, background
from helpers.inference_fixtures import ONE_THREAD_ENV, make_checkpoint

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


@contextmanager
def serving(ckpt: Path, workdir: Path) -> Iterator[str]:
    """The base URL of ``python -m deepinsight.serve`` serving ``ckpt``, stopped on exit."""
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
def server(tiny_trained_run: Path, tmp_path_factory) -> Iterator[str]:
    """The server on the tiny run's best checkpoint (a whole-image model)."""
    ckpt = tiny_trained_run / "checkpoints" / "best.ckpt"
    with serving(ckpt, tmp_path_factory.mktemp("serve")) as url:
        yield url


@pytest.fixture(scope="module")
def face_server(tmp_path_factory) -> Iterator[str]:
    """The server on an untrained model whose checkpoint says it was trained on aligned faces:
    with the default faces=auto it finds, aligns and scores every face of an upload."""
    workdir = tmp_path_factory.mktemp("serve-faces")
    ckpt = make_checkpoint(workdir / "faces.ckpt", preprocessing={"crops": "aligned_faces"})
    with serving(ckpt, workdir) as url:
        yield url


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


@contextmanager
def open_page(browser, server: str) -> Iterator[object]:
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


@pytest.fixture
def page(browser, server):
    with open_page(browser, server) as page:
        yield page


@pytest.fixture
def face_page(browser, face_server):
    with open_page(browser, face_server) as page:
        yield page


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
    # A whole-image model's answer has no faces: no boxes, no face list, no "highest face" note.
    assert "faces" not in expected and page.locator(".face-box").count() == 0
    assert page.is_hidden("#faces") and page.is_hidden("#score-note")
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


def test_faces_are_outlined_and_a_picture_without_one_is_refused(face_page, face_server, tmp_path):
    info = httpx.get(face_server + "info", timeout=10).json()
    assert info["faces"] == "auto" and info["preprocessing"]["crops"] == "aligned_faces"
    photo = tmp_path / "astronaut.png"
    astronaut().save(photo)
    expected = api_predict(face_server, photo).json()
    faces = expected["faces"]
    assert len(faces) >= 1 and expected["score"] == max(face["score"] for face in faces)

    face_page.set_input_files("#file-input", str(photo))
    wait_for_state(face_page, "done")
    shown = read_result(face_page)
    assert shown["verdict"] == expected["prediction"].upper()
    assert abs(shown["score"] - expected["score"]) < 1e-5
    assert face_page.is_visible("#score-note")
    assert "highest face score" in face_page.text_content("#score-note")

    # One box per face, labelled with its index, verdict and score, where the face is in the
    # picture as displayed (512 px shown at 256).
    boxes = face_page.locator(".face-box")
    assert boxes.count() == len(faces)
    frame = face_page.eval_on_selector(
        "#preview",
        """img => {
            const r = img.getBoundingClientRect(), border = img.clientLeft;
            return { left: r.left + border, top: r.top + border, scale: img.clientWidth / 512 };
        }""",
    )
    for face, box in zip(faces, boxes.all()):
        assert box.is_visible()
        label = f"{face['face']}: {face['prediction']} {face['score']:.2f}"
        assert box.text_content() == label
        assert face["prediction"] in box.get_attribute("class").split()
        rect = box.bounding_box()
        x0, y0, x1, y1 = (v * frame["scale"] for v in face["box"])
        assert abs(rect["x"] - frame["left"] - x0) < 1.5, (rect, face["box"])
        assert abs(rect["y"] - frame["top"] - y0) < 1.5, (rect, face["box"])
        assert abs(rect["width"] - (x1 - x0)) < 1.5 and abs(rect["height"] - (y1 - y0)) < 1.5
    lines = face_page.locator("#faces-list li").all_text_contents()
    assert lines == [
        f"face {face['face']}: {face['prediction']} {face['score']:.4f}" for face in faces
    ]
    assert "outlined" in face_page.get_attribute("#preview", "alt")

    # A picture without a face: the server's 422 message in the error box, no boxes left over.
    empty = tmp_path / "no_face.png"
    background(256).save(empty)
    answer = api_predict(face_server, empty)
    assert answer.status_code == 422, answer.text
    face_page.set_input_files("#file-input", str(empty))
    wait_for_state(face_page, "error")
    assert face_page.is_visible("#error")
    assert face_page.text_content("#error") == answer.json()["error"]
    assert "no face found" in face_page.text_content("#error")
    assert face_page.locator(".face-box").count() == 0
    assert face_page.is_hidden("#faces") and face_page.is_hidden("#verdict")
