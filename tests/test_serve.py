"""The HTTP server through FastAPI's test client: every endpoint, every bad input, and scores
equal to ``predict``'s. One server (LitServe's worker process included) serves the module."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers.inference_fixtures import make_checkpoint, png_with_header_size, random_rgb, run_cli
from PIL import Image

from deepinsight.data.image_io import load_image
from deepinsight.data.transforms import build_eval_transform
from deepinsight.errors import EXIT_USER_ERROR
from deepinsight.inference import load_detector

litserve = pytest.importorskip("litserve")

# Small limits, so the over-limit cases cost nothing: 32 KB bodies, 50,000-pixel images.
MAX_BODY_MB = 32 / 1024
MAX_PIXELS = 50_000


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("serve") / "custom_cnn.ckpt", threshold=0.5)


@pytest.fixture(scope="module")
def client(ckpt):
    from fastapi.testclient import TestClient
    from litserve.utils import wrap_litserve_start

    from deepinsight.serve.app import ServeOptions, build_server

    options = ServeOptions(
        ckpt=str(ckpt), device="cpu", max_batch_size=4, batch_timeout=0.05,
        max_body_mb=MAX_BODY_MB, max_pixels=MAX_PIXELS,
    )  # fmt: skip
    server = build_server(options)
    with wrap_litserve_start(server) as started, TestClient(started.app) as test_client:
        # The first request waits in LitServe's queue until the worker process is up: no polling.
        assert test_client.post("/predict", content=jpeg_bytes()).status_code == 200
        yield test_client


def jpeg_bytes(seed: int = 0, side: int | None = None) -> bytes:
    buffer = io.BytesIO()
    image = random_rgb(seed=seed) if side is None else random_rgb(side, side, seed)
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_health_info_and_page(client, ckpt):
    assert client.get("/health").text == "ok"
    info = client.get("/info").json()
    detector = load_detector(ckpt, device="cpu")
    assert info["model"] == "custom_cnn" and info["threshold"] == detector.threshold
    assert info["temperature"] == detector.spec.temperature
    assert info["preprocessing"] == detector.preprocessing
    assert info["batching"]["max_batch_size"] == 4 and "file" in info
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Offline: every asset the page names is served by this server, none from elsewhere.
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("app.js", "style.css"):
        assert f"/static/{asset}" in page.text
        assert client.get(f"/static/{asset}").status_code == 200
    for missing in ("/static/..%2F__init__.py", "/static/nothing.js", "/no/such/page"):
        response = client.get(missing)
        assert response.status_code == 404 and "error" in response.json(), missing


def test_scores_equal_predict_through_multipart_raw_and_batches(client, ckpt, tmp_path):
    detector = load_detector(ckpt, device="cpu")
    transform = build_eval_transform(detector.preprocessing)
    bodies = [jpeg_bytes(seed) for seed in range(3)]
    expected = []
    for i, body in enumerate(bodies):
        path = tmp_path / f"face{i}.jpg"
        path.write_bytes(body)
        expected.append(float(detector.score(transform(load_image(path)).unsqueeze(0))[0]))
    for body, score in zip(bodies, expected):
        multipart = client.post("/predict", files={"file": ("face.jpg", body, "image/jpeg")})
        raw = client.post("/predict", content=body, headers={"content-type": "image/jpeg"})
        for response, filename in ((multipart, "face.jpg"), (raw, None)):
            assert response.status_code == 200, response.text
            row = response.json()
            assert row["score"] == pytest.approx(score, abs=1e-5)
            assert row["prediction"] == ("fake" if row["score"] >= row["threshold"] else "real")
            assert row["filename"] == filename and row["model"] == "custom_cnn"
            assert row["format_version"] == detector.spec.format_version
            assert 1 <= row["batch_size"] <= 4 and "cam_png" not in row


def test_cam_adds_a_readable_heatmap(client):
    for response in (
        client.post("/predict?cam=true", content=jpeg_bytes()),
        client.post("/predict", files={"file": ("a.jpg", jpeg_bytes())}, data={"cam": "true"}),
    ):
        assert response.status_code == 200, response.text
        heatmap = Image.open(io.BytesIO(base64.b64decode(response.json()["cam_png"])))
        assert heatmap.format == "PNG" and min(heatmap.size) >= 256


def bad_requests() -> dict[str, tuple[dict, int, str]]:
    jpeg = jpeg_bytes(side=160)  # big enough that its first half still has a whole header
    bomb = io.BytesIO()
    Image.new("L", (300, 300)).save(bomb, format="PNG")  # 90,000 pixels > MAX_PIXELS
    return {
        "not an image": ({"content": b"hello, world"}, 400, "not an image"),
        "zero bytes": ({"content": b""}, 400, "empty file"),
        "zero-byte upload": ({"files": {"file": ("a.jpg", b"")}}, 400, "empty file"),
        "truncated jpeg": ({"content": jpeg[: len(jpeg) // 2]}, 400, "truncated"),
        "too many pixels": ({"content": bomb.getvalue()}, 400, "over the limit"),
        "body over the limit": ({"content": b"x" * 40_000}, 413, "over the limit"),
        "missing file field": ({"files": {"photo": ("a.jpg", jpeg)}}, 400, "no 'file' field"),
    }


@pytest.mark.parametrize("case", list(bad_requests()))
def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_serving(client, case):
    kwargs, status, words = bad_requests()[case]
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert client.post("/predict", content=jpeg_bytes()).status_code == 200


def test_a_decompression_bomb_header_is_refused_before_decoding(client, tmp_path):
    bomb = png_with_header_size(tmp_path / "bomb.png", 100_000, 100_000)
    response = client.post("/predict", files={"file": ("bomb.png", bomb.read_bytes())})
    assert response.status_code == 400 and "decompression bomb" in response.json()["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method_is_405_with_json(client, method):
    response = getattr(client, method)("/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "use POST" in response.json()["error"]


def test_uploads_are_parsed_in_memory(monkeypatch):
    """A 3 MB form (over Starlette's 1 MB spool size) never touches a temporary file."""
    from deepinsight.serve.uploads import parse_upload

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was written to disk")

    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    payload = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    boundary = "deepinsight-test"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    upload = parse_upload(f"multipart/form-data; boundary={boundary}", body, "")
    assert upload.data == payload and upload.filename == "big.bin" and not upload.cam


def test_internal_errors_are_5xx_without_a_traceback():
    from starlette.exceptions import HTTPException

    from deepinsight.serve.app import http_error_as_json

    def answer(status: int, detail: str) -> tuple[int, dict]:
        response = asyncio.run(http_error_as_json(None, HTTPException(status, detail)))
        return response.status_code, json.loads(response.body)

    assert answer(500, "Traceback (most recent call last): secret") == (
        500,
        {"error": "internal error"},
    )
    assert answer(504, "Request timed out") == (504, {"error": "the model did not answer in time"})
    assert answer(404, "no such file") == (404, {"error": "no such file"})


def test_a_model_that_cannot_be_loaded_stops_the_start_in_one_line(tmp_path, capsys):
    from deepinsight.serve.cli import main

    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(main, [f"ckpt={broken}"], capsys)
    assert code == EXIT_USER_ERROR and err.count("\n") == 1 and err.startswith("error:")
    code, _, err = run_cli(main, [f"ckpt={broken}", "max_batch_size=0"], capsys)
    assert code == EXIT_USER_ERROR and "max_batch_size" in err
