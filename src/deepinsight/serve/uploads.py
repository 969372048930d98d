"""The server's door: every request to ``POST /predict`` is checked here, in memory.

A bad request never reaches a model worker and never costs more than reading its body: a
wrong method, a body over the limit, a multipart form without a ``file`` field, zero bytes, not
an image, a truncated image or a decompression bomb each get a 4xx with ``{"error": reason}``
and one log line. A good one is handed on to LitServe as JSON (the image's bytes in base64, its
file name, whether a heatmap is wanted), so the worker receives plain data it can unpickle.

Uploads stay in memory: the body is read with a size limit and multipart forms are parsed with
the standard library's ``email`` parser, never Starlette's, which spools file parts over 1 MB to
a temporary file. No path from a request is ever opened.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread

from deepinsight.data.image_io import ImageLoadError, decode_image_bytes

log = logging.getLogger("deepinsight.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FILE_FIELD = "file"


class UploadError(Exception):
    """A request the server refuses: an HTTP status and a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Upload:
    data: bytes
    filename: str | None
    cam: bool


def parse_upload(content_type: str, body: bytes, query: str) -> Upload:
    """The image in a request body: a multipart form's ``file`` field, or the body itself."""
    cam = _truthy(parse_qs(query).get("cam", ["false"])[-1])
    if not content_type.lower().startswith("multipart/form-data"):
        return Upload(body, None, cam)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise UploadError(400, "malformed multipart body")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields.setdefault(str(name), part)
    if "cam" in fields:
        cam = _truthy(fields["cam"].get_content().strip() if fields["cam"] else "")
    part = fields.get(FILE_FIELD)
    if part is None:
        found = ", ".join(sorted(fields)) or "none"
        raise UploadError(400, f"no '{FILE_FIELD}' field in the form (fields: {found})")
    return Upload(part.get_payload(decode=True) or b"", part.get_filename(), cam)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


class UploadGate:
    """ASGI middleware in front of LitServe's ``/predict``: check, then forward as JSON."""

    def __init__(self, app: Any, *, path: str, max_body_bytes: int, max_pixels: int | None):
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.max_pixels = max_pixels

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        try:
            if scope["method"] != "POST":
                raise UploadError(405, f"{scope['method']} is not allowed here; use POST")
            body = await self._read_body(scope, receive)
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            upload = parse_upload(headers.get("content-type", ""), body, _query(scope))
            # Decoding is CPU work: off the event loop, so other requests keep being served.
            await anyio.to_thread.run_sync(decode_image_bytes, upload.data, self.max_pixels)
        except UploadError as err:
            await self._refuse(scope, send, err.status, err.reason)
            return
        except ImageLoadError as err:
            await self._refuse(scope, send, 400, str(err))
            return
        payload = json.dumps(
            {
                "image": base64.b64encode(upload.data).decode("ascii"),
                "filename": upload.filename,
                "cam": upload.cam,
            }
        ).encode()
        forwarded = dict(scope)
        forwarded["headers"] = [
            *[
                (k, v)
                for k, v in scope["headers"]
                if k.lower() not in (b"content-type", b"content-length")
            ],
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        await self.app(forwarded, replay, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, refusing it (413) as soon as it passes the limit."""
        limit = self.max_body_bytes
        for key, value in scope["headers"]:
            if key.lower() == b"content-length" and value.isdigit() and int(value) > limit:
                raise UploadError(413, f"body of {int(value)} bytes is over the limit of {limit}")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise UploadError(400, "the client went away before the body arrived")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise UploadError(413, f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
        client = scope.get("client") or ("?", 0)
        log.info(
            "refused %s %s from %s: %d %s",
            scope["method"],
            scope["path"],
            client[0],
            status,
            reason,
        )
        headers = [(b"allow", b"POST")] if status == 405 else []
        await send_json(send, status, {"error": reason}, headers)


def _query(scope: Scope) -> str:
    return scope.get("query_string", b"").decode("latin-1")


async def send_json(
    send: Send,
    status: int,
    document: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(document).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
