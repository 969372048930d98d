"""The server: LitServe's batching workers behind the upload gate, plus ``/info`` and the page."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import litserve as ls
from fastapi import HTTPException
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepinsight.errors import DeepInsightError
from deepinsight.faces.policy import check_face_options
from deepinsight.inference import load_detector
from deepinsight.inference.torch_detector import resolve_device
from deepinsight.serve.api import DetectorAPI
from deepinsight.serve.uploads import UploadGate

PREDICT_PATH = "/predict"
# The page's files, read once at start-up: a request names one of these, never a path.
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class ServeOptions:
    ckpt: str
    host: str = "127.0.0.1"
    port: int = 8000
    device: str = "auto"
    max_batch_size: int = 16
    batch_timeout: float = 0.01
    workers_per_device: int = 1
    timeout: float = 30.0
    max_body_mb: float = 20.0
    max_pixels: int | None = 64_000_000
    faces: str = "auto"
    face_detector: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise DeepInsightError(f"max_batch_size must be at least 1, not {self.max_batch_size}")
        if self.batch_timeout < 0:
            raise DeepInsightError(f"batch_timeout must be >= 0 seconds, not {self.batch_timeout}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise DeepInsightError(f"device must be auto, cpu or cuda, not {self.device!r}")
        # One line here, not a report from a model worker.
        check_face_options(self.faces, dict(self.face_detector or {}))


def model_info(ckpt: str) -> dict[str, Any]:
    """What ``/info`` says about the model; loading it here also checks it before any worker."""
    detector = load_detector(ckpt, device="cpu")
    spec = detector.spec
    return {
        "model": spec.model_name,
        "file": Path(ckpt).name,
        "kind": detector.kind,
        "format_version": spec.format_version,
        "preprocessing": detector.preprocessing,
        "threshold": detector.threshold,
        "threshold_rule": spec.threshold_rule,
        "temperature": spec.temperature,
        "calibrated_on": spec.calibrated_on,
        "score": "P(fake); fake iff score >= threshold",
    }


def accelerator(options: ServeOptions, info: dict[str, Any]) -> str:
    """The device the workers use: ``cuda`` or ``cpu`` (an unusable ``cuda`` is one line)."""
    if info["kind"] == "onnx":
        return "cpu"  # ONNX models run on onnxruntime's CPU provider
    return resolve_device(options.device)


def build_server(options: ServeOptions, info: dict[str, Any] | None = None) -> ls.LitServer:
    """The LitServer for ``options``, not started: ``server.run()``, or LitServe's test helper."""
    info = info or model_info(options.ckpt)
    api = DetectorAPI(
        options.ckpt,
        options.max_pixels,
        options.max_batch_size,
        options.batch_timeout,
        options.faces,
        dict(options.face_detector or {}),
    )
    gate = {
        "path": PREDICT_PATH,
        "max_body_bytes": int(options.max_body_mb * 1024 * 1024),
        "max_pixels": options.max_pixels,
    }
    device = accelerator(options, info)
    server = ls.LitServer(
        api,
        accelerator=device,
        workers_per_device=options.workers_per_device,
        timeout=options.timeout,
        info_path="/litserve/info",  # /info is ours: the model's own description
        middlewares=[(UploadGate, gate)],
        disable_openapi_url=True,
    )
    document = {
        **info,
        "device": device,
        "batching": {
            "max_batch_size": options.max_batch_size,
            "batch_timeout": options.batch_timeout,
        },
        "limits": {"max_body_mb": options.max_body_mb, "max_pixels": options.max_pixels},
        "faces": options.faces,
    }
    add_page_and_info(server, document)
    return server


async def http_error_as_json(request: Any, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTP error in the ``{"error": ...}`` form; a 5xx says no more than one line."""
    if exc.status_code == 504:
        reason = "the model did not answer in time"
    elif exc.status_code >= 500:
        reason = "internal error"  # LitServe's detail may carry the worker's exception text
    else:
        reason = str(exc.detail)
    return JSONResponse({"error": reason}, status_code=exc.status_code)


def add_page_and_info(server: ls.LitServer, document: dict[str, Any]) -> None:
    assets = {
        entry.name: (entry.read_bytes(), STATIC_TYPES[Path(entry.name).suffix])
        for entry in resources.files("deepinsight.serve").joinpath("static").iterdir()
        if Path(entry.name).suffix in STATIC_TYPES
    }

    async def info() -> JSONResponse:
        return JSONResponse(document)

    async def page() -> Response:
        return await asset("index.html")

    async def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, "no such file")
        body, media_type = assets[name]
        return Response(body, media_type=media_type)

    # LitServe answers "/" with a plain "litserve running": the page replaces it.
    server.app.router.routes = [
        route for route in server.app.router.routes if getattr(route, "path", None) != "/"
    ]

    # Every route's errors, LitServe's /predict ones included (timeouts, worker failures).
    server.app.add_exception_handler(StarletteHTTPException, http_error_as_json)
    server.app.add_api_route("/info", info, methods=["GET"])
    server.app.add_api_route("/", page, methods=["GET"])
    server.app.add_api_route("/static/{name}", asset, methods=["GET"])
