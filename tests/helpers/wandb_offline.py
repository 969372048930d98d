"""Reading an offline W&B run back (config, summary, history) without the network.

wandb 0.31 no longer ships a Python reader for its ``.wandb`` files, so this module decodes the
container itself: a LevelDB-style log (32 KiB blocks of checksummed chunks) whose payloads are
W&B's own protobuf ``Record`` messages, parsed with the ``wandb.proto`` classes. The tests use it
to check what a run logged before it is ever synced.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepinsight.errors import DeepInsightError

_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)  # ident, magic, version
_BLOCK = 32 * 1024
_CHUNK_HEADER = 7  # crc32 (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    path: Path
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def _payloads(data: bytes):
    """Yield the records of a LevelDB-style log, reassembling chunks split across blocks."""
    pos, pending = len(_HEADER), b""
    while pos + _CHUNK_HEADER <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK_HEADER:  # block tail too small for a header: zero padding
            pos += room
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        chunk = data[pos + _CHUNK_HEADER : pos + _CHUNK_HEADER + length]
        pos += _CHUNK_HEADER + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0 and length == 0:  # trailing zeros of a partly written block
            pos += room - _CHUNK_HEADER
        else:
            raise DeepInsightError(f"corrupt W&B log record (type {kind}) at byte {pos}")


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_offline_run(path: str | Path) -> OfflineRun:
    """Read a ``.wandb`` file, an ``offline-run-*`` folder, or a run dir holding ``wandb/``."""
    from wandb.proto import wandb_internal_pb2 as pb

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.wandb")) or sorted(path.glob("wandb/offline-run-*/*.wandb"))
        if not files:
            raise DeepInsightError(f"no offline W&B run found under {path}")
        path = files[-1]
    data = path.read_bytes()
    if not data.startswith(_HEADER):
        raise DeepInsightError(f"{path} is not a W&B run file")
    run = OfflineRun(path=path)
    for payload in _payloads(data):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.name, run.group = r.run_id, r.display_name, r.run_group
            run.job_type, run.tags = r.job_type, list(r.tags)
            for item in r.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run.config[_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
    return run
