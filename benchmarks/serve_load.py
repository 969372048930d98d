"""The HTTP server under load: batch size 1 against dynamic batching, in one process.

    python benchmarks/serve_load.py --ckpt runs/.../checkpoints/best.ckpt --out serve_load.json
    python benchmarks/serve_load.py --ckpt best.ckpt --seconds 5 --clients 4     # a smoke run

Starts ``python -m deepinsight.serve`` twice, one after the other, on a free loopback port with
the same settings except the batch size: first ``max_batch_size=1`` (the baseline), then
``max_batch_size=--max-batch-size`` with ``batch_timeout=--batch-timeout`` (dynamic batching).
Each server is driven for ``--seconds`` by ``--clients`` concurrent clients (one
``httpx.AsyncClient`` each, one request in flight per client, so at most that many
outstanding), after a short untimed warm-up. About ``--bad-fraction`` of the requests are bad
uploads, in turn: text bytes, zero bytes, the first half of a real JPEG, and a multipart form
without the ``file`` field; the others upload real images (``--images``, by default the demo
dataset's test split), read into memory once.

Per server it reports the throughput (good requests answered 200, per second), the p50/p95/p99
latency of those requests, the status codes of good and of bad requests separately, the
requests that got no answer (connection errors, timeouts), and the histogram of the
``batch_size`` each good answer says it was scored in; then the ratio of the two throughputs
and whether the targets hold: no 5xx and nothing dropped, every bad upload a 4xx, the ratio at
least 2. Only ``--check`` turns a missed target into a non-zero exit; the CPU and the load
average around each server's run are printed beside the figures (on a shared machine, other work
slows torch's intra-op threads far more than its share of the cores; ``--server-threads N`` sets
the servers' ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quickstart_time import cpu_description  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
BAD_KINDS = ("not_image", "empty", "truncated_jpeg", "missing_field")
# The keys every 200 answer must carry (the server's contract).
ANSWER_KEYS = (
    "score",
    "prediction",
    "threshold",
    "model",
    "format_version",
    "filename",
    "batch_size",
)
HEALTH_DEADLINE_S = 300.0  # loading a checkpoint and importing Lightning on a busy 2-core box
WARMUP_ROUNDS = 2  # untimed good requests per client before the clock starts


def default_images() -> Path:
    from deepinsight.data.demo import ensure_demo_dataset
    from deepinsight.data.layouts import KAGGLE_IMAGE_DIR

    return ensure_demo_dataset() / KAGGLE_IMAGE_DIR / "test"


def load_images(folder: Path) -> list[tuple[str, bytes]]:
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return [(p.name, p.read_bytes()) for p in paths]


def bad_uploads(images: list[tuple[str, bytes]]) -> dict[str, dict[str, Any]]:
    """httpx ``files=`` for each kind of bad upload."""
    jpegs = [data for name, data in images if data[:3] == b"\xff\xd8\xff"]
    if not jpegs:
        raise SystemExit("the truncated-JPEG upload needs at least one JPEG among --images")
    return {
        "not_image": {"file": ("notes.txt", b"this is not an image\n" * 50, "text/plain")},
        "empty": {"file": ("empty.jpg", b"", "image/jpeg")},
        "truncated_jpeg": {"file": ("truncated.jpg", jpegs[0][: len(jpegs[0]) // 2], "image/jpeg")},
        "missing_field": {"image": ("face.jpg", jpegs[0], "image/jpeg")},
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil
    return sorted_values[int(rank) - 1]


class Server:
    """``python -m deepinsight.serve`` in its own process group, always stopped on exit."""

    def __init__(
        self,
        ckpt: Path,
        max_batch_size: int,
        batch_timeout: float,
        log: Path,
        threads: int | None = None,
    ):
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.command = [
            sys.executable,
            "-m",
            "deepinsight.serve",
            f"ckpt={ckpt}",
            "host=127.0.0.1",
            f"port={self.port}",
            f"max_batch_size={max_batch_size}",
            f"batch_timeout={batch_timeout}",
        ]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_SILENT": "true"}
        if self.threads is not None:  # torch's intra-op threads in every server process
            env["OMP_NUM_THREADS"] = str(self.threads)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start_line(self) -> str | None:
        with contextlib.suppress(OSError), open(self.log_path, errors="replace") as log:
            for line in log:
                if line.startswith("serving "):
                    return line.strip()
        return None

    def stop(self) -> int | None:
        """SIGTERM to the whole group (LitServe's workers too), SIGKILL if it lingers."""
        if self.proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        # Workers that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.returncode

    async def wait_healthy(self, deadline_s: float) -> float:
        import httpx

        started = time.perf_counter()
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            while time.perf_counter() - started < deadline_s:
                if not self.alive():
                    raise RuntimeError(
                        f"the server exited with {self.proc.returncode} before /health answered; "
                        f"its log ends:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(self.url + "/health")
                    if response.status_code == 200:
                        return time.perf_counter() - started
                await asyncio.sleep(0.2)
        raise RuntimeError(
            f"/health did not answer 200 within {deadline_s:.0f} s; "
            f"the log ends:\n{self.log_tail()}"
        )


def new_stats() -> dict[str, Any]:
    return {
        "good_status": Counter(),
        "bad_status": {kind: Counter() for kind in BAD_KINDS},
        "dropped": Counter(),
        "latencies_ms": [],
        "batch_sizes": Counter(),
        "answers_missing_keys": 0,
        "bad_4xx_without_error_json": 0,
        "examples_5xx": [],
        "examples_good_not_200": [],
        "examples_bad": {},
    }


async def client_loop(
    url: str,
    deadline: float,
    images: list[tuple[str, bytes]],
    bad: dict[str, dict[str, Any]],
    stats: dict[str, Any],
    counter: list[int],
    args: argparse.Namespace,
) -> None:
    import httpx

    async with httpx.AsyncClient(trust_env=False, timeout=args.timeout) as client:
        while time.perf_counter() < deadline:
            # A shared counter spreads the bad uploads evenly: request i is bad when
            # floor((i + 1) * f) > floor(i * f), so exactly f of them are, in turn by kind.
            i = counter[0]
            counter[0] += 1
            is_bad = int((i + 1) * args.bad_fraction) > int(i * args.bad_fraction)
            if is_bad:
                kind = BAD_KINDS[int(i * args.bad_fraction) % len(BAD_KINDS)]
                files = bad[kind]
            else:
                kind = None
                files = {"file": images[i % len(images)]}  # (name, bytes): type from the name
            started = time.perf_counter()
            try:
                response = await client.post(url + "/predict", files=files)
            except httpx.HTTPError as err:  # connection errors, timeouts, protocol errors
                stats["dropped"][f"{'bad' if is_bad else 'good'}:{type(err).__name__}"] += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            status = response.status_code
            if status >= 500 and len(stats["examples_5xx"]) < 5:
                stats["examples_5xx"].append(
                    {"kind": kind or "good", "status": status, "body": response.text[:500]}
                )
            if is_bad:
                stats["bad_status"][kind][status] += 1
                stats["examples_bad"].setdefault(
                    kind, {"status": status, "body": response.text[:300]}
                )
                if 400 <= status < 500 and not _error_json(response):
                    stats["bad_4xx_without_error_json"] += 1
                continue
            stats["good_status"][status] += 1
            if status != 200:
                if len(stats["examples_good_not_200"]) < 5:
                    stats["examples_good_not_200"].append(
                        {"status": status, "body": response.text[:500]}
                    )
                continue
            stats["latencies_ms"].append(elapsed_ms)
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            if not all(key in answer for key in ANSWER_KEYS):
                stats["answers_missing_keys"] += 1
            stats["batch_sizes"][answer.get("batch_size")] += 1


def _error_json(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


async def warm_up(url: str, images: list[tuple[str, bytes]], clients: int, timeout: float) -> None:
    """A few untimed good requests (first batches pay for lazy allocations); errors ignored."""
    import httpx

    async def one(k: int) -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            for r in range(WARMUP_ROUNDS):
                name, data = images[(k * WARMUP_ROUNDS + r) % len(images)]
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(url + "/predict", files={"file": (name, data)})

    await asyncio.gather(*(one(k) for k in range(clients)))


async def drive(
    server: Server,
    images: list[tuple[str, bytes]],
    bad: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    import httpx

    startup_s = await server.wait_healthy(HEALTH_DEADLINE_S)
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
        info_response = await client.get(server.url + "/info")
    try:
        info = info_response.json()
    except ValueError:
        info = {"status": info_response.status_code, "body": info_response.text[:500]}
    await warm_up(server.url, images, args.clients, args.timeout)

    stats, counter = new_stats(), [0]
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.wait_for(
        asyncio.gather(
            *(
                client_loop(server.url, deadline, images, bad, stats, counter, args)
                for _ in range(args.clients)
            )
        ),
        timeout=args.seconds + args.timeout + 60,
    )
    wall = time.perf_counter() - started

    healthy_after = False
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(trust_env=False, timeout=10.0) as client:
            healthy_after = (await client.get(server.url + "/health")).status_code == 200
    return summarise(stats, wall, counter[0], startup_s, info, server, healthy_after)


def summarise(
    stats: dict[str, Any],
    wall: float,
    sent: int,
    startup_s: float,
    info: Any,
    server: Server,
    healthy_after: bool,
) -> dict[str, Any]:
    latencies = sorted(stats["latencies_ms"])
    good_ok = len(latencies)
    bad_total = sum(sum(c.values()) for c in stats["bad_status"].values())
    bad_4xx = sum(n for c in stats["bad_status"].values() for s, n in c.items() if 400 <= s < 500)
    n_5xx = sum(n for s, n in stats["good_status"].items() if s >= 500) + sum(
        n for c in stats["bad_status"].values() for s, n in c.items() if s >= 500
    )
    dropped = sum(stats["dropped"].values())
    order = sorted(
        stats["batch_sizes"].items(),
        key=lambda kv: (not isinstance(kv[0], int), str(kv[0]).zfill(9)),
    )
    sizes = {str(k): v for k, v in order}
    numeric = [(k, v) for k, v in stats["batch_sizes"].items() if isinstance(k, int)]
    return {
        "command": " ".join(["python", *server.command[1:]]),
        "start_line": server.start_line(),
        "startup_s": round(startup_s, 1),
        "info": info,
        "wall_s": round(wall, 2),
        "requests_sent": sent,
        "good_ok": good_ok,
        "throughput_per_s": round(good_ok / wall, 2),
        "latency_ms": {
            **{f"p{q}": _round(percentile(latencies, q)) for q in (50, 95, 99)},
            "mean": _round(sum(latencies) / good_ok if good_ok else None),
            "max": _round(latencies[-1] if latencies else None),
        },
        "good_status": {str(s): n for s, n in sorted(stats["good_status"].items())},
        "bad_status": {
            kind: {str(s): n for s, n in sorted(c.items())}
            for kind, c in stats["bad_status"].items()
        },
        "bad_total": bad_total,
        "bad_4xx": bad_4xx,
        "bad_4xx_without_error_json": stats["bad_4xx_without_error_json"],
        "n_5xx": n_5xx,
        "examples_5xx": stats["examples_5xx"],
        "examples_good_not_200": stats["examples_good_not_200"],
        "examples_bad": stats["examples_bad"],
        "dropped": dropped,
        "dropped_by_kind": dict(stats["dropped"]),
        "answers_missing_keys": stats["answers_missing_keys"],
        "batch_size_histogram": sizes,
        "mean_batch_size": round(sum(k * v for k, v in numeric) / sum(v for _, v in numeric), 2)
        if numeric
        else None,
        "alive_after": server.alive(),
        "healthy_after": healthy_after,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_server(
    label: str,
    max_batch_size: int,
    images: list[tuple[str, bytes]],
    bad: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    logdir: Path,
) -> dict[str, Any]:
    print(
        f"[{label}] starting the server (max_batch_size={max_batch_size}, "
        f"batch_timeout={args.batch_timeout}) ...",
        flush=True,
    )
    log = logdir / f"{label}.log"
    server = Server(args.ckpt, max_batch_size, args.batch_timeout, log, args.server_threads)
    load_before = os.getloadavg()
    try:
        with server:
            result = asyncio.run(drive(server, images, bad, args))
    except (RuntimeError, asyncio.TimeoutError) as err:
        print(f"[{label}] FAILED: {err}", flush=True)
        return {
            "error": str(err),
            "command": " ".join(["python", *server.command[1:]]),
            "log_tail": server.log_tail(),
        }
    result["max_batch_size"] = max_batch_size
    # The machine's 1-minute load average around this server's run: the figures of a shared
    # machine mean little when other work was running too.
    result["loadavg_1min_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    result["exit_code"] = server.proc.returncode if server.proc else None
    if not result["alive_after"] or result["n_5xx"]:
        result["log_tail"] = server.log_tail()
    print(f"[{label}] {result['start_line']}", flush=True)
    print(
        f"[{label}] {result['good_ok']} good answers in {result['wall_s']} s: "
        f"{result['throughput_per_s']}/s",
        flush=True,
    )
    return result


def print_table(results: dict[str, dict[str, Any]]) -> None:
    labels = list(results)
    ok = {label: r for label, r in results.items() if "error" not in r}

    def row(name: str, fn) -> None:
        cells = [str(fn(ok[label])) if label in ok else "FAILED" for label in labels]
        print(f"  {name:<26}" + "".join(f"{c:>24}" for c in cells))

    print(f"  {'':<26}" + "".join(f"{label:>24}" for label in labels))
    row("max_batch_size", lambda r: r["max_batch_size"])
    row("good answers / s", lambda r: r["throughput_per_s"])
    for q in ("p50", "p95", "p99"):
        row(f"latency {q} (ms)", lambda r, q=q: r["latency_ms"][q])
    row("requests sent", lambda r: r["requests_sent"])
    row("good: status counts", lambda r: _counts(r["good_status"]))
    row("bad: status counts", lambda r: _counts(_merge(r["bad_status"])))
    for kind in BAD_KINDS:
        row(f"  {kind}", lambda r, kind=kind: _counts(r["bad_status"][kind]))
    row("5xx", lambda r: r["n_5xx"])
    row("dropped (no answer)", lambda r: r["dropped"])
    row("mean batch_size", lambda r: r["mean_batch_size"])
    row("load average before/after", lambda r: r["loadavg_1min_before_after"])
    row("alive and healthy after", lambda r: r["alive_after"] and r["healthy_after"])
    for label, r in ok.items():
        print(
            f"  {label} batch_size histogram (size:answers): {_counts(r['batch_size_histogram'])}"
        )


def _merge(by_kind: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for counts in by_kind.values():
        total.update(counts)
    return dict(sorted(total.items()))


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in counts.items()) or "-"


def targets(results: dict[str, dict[str, Any]], ratio: float | None) -> dict[str, bool]:
    ok = [r for r in results.values() if "error" not in r]
    complete = len(ok) == len(results)
    return {
        "servers ran and stayed up": complete
        and all(r["alive_after"] and r["healthy_after"] for r in ok),
        "zero 5xx": complete and all(r["n_5xx"] == 0 for r in ok),
        "zero dropped": complete and all(r["dropped"] == 0 for r in ok),
        "every bad upload got a 4xx": complete and all(r["bad_4xx"] == r["bad_total"] for r in ok),
        "4xx answers carry {'error': ...}": complete
        and all(r["bad_4xx_without_error_json"] == 0 for r in ok),
        "200 answers carry every contract key": complete
        and all(r["answers_missing_keys"] == 0 for r in ok),
        "throughput ratio >= 2": ratio is not None and ratio >= 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="a DeepInsight checkpoint")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=60.0, help="load per server")
    parser.add_argument("--bad-fraction", type=float, default=0.1, help="share of bad uploads")
    parser.add_argument("--max-batch-size", type=int, default=16, help="the dynamic server's")
    parser.add_argument("--batch-timeout", type=float, default=0.01, help="seconds, both servers")
    parser.add_argument("--images", type=Path, help="a folder of images (default: demo test split)")
    parser.add_argument(
        "--server-threads", type=int, help="OMP_NUM_THREADS for the servers (default: unset)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--out", "--json", dest="out", type=Path, help="also write the JSON here")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if not args.ckpt.is_file():
        parser.error(f"no checkpoint at {args.ckpt}")
    if not 0 <= args.bad_fraction < 1:
        parser.error("--bad-fraction must be in [0, 1)")
    args.ckpt = args.ckpt.resolve()

    import torch

    folder = args.images if args.images is not None else default_images()
    images = load_images(folder)
    bad = bad_uploads(images)
    cpu = cpu_description()
    kind = "AVX-512" if cpu["avx512f"] else "AVX2 only" if cpu["avx2"] else "no AVX2"
    print(
        f"CPU: {cpu['model']}, {cpu['cores']} cores, {kind}; torch {torch.__version__}; "
        f"server threads {args.server_threads or 'torch default'}"
    )
    print(
        f"{len(images)} images from {folder}; {args.clients} clients x {args.seconds:g} s per "
        f"server, {args.bad_fraction:.0%} bad uploads",
        flush=True,
    )

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        results["batch1"] = run_server("batch1", 1, images, bad, args, Path(tmp))
        results["dynamic"] = run_server(
            "dynamic", args.max_batch_size, images, bad, args, Path(tmp)
        )

    base, dyn = results["batch1"], results["dynamic"]
    ratio = None
    if "error" not in base and "error" not in dyn and base["throughput_per_s"] > 0:
        ratio = dyn["throughput_per_s"] / base["throughput_per_s"]
    print()
    print_table(results)
    print()
    if ratio is not None:
        print(
            f"batch size 1: {base['throughput_per_s']}/s; dynamic batching "
            f"(max {args.max_batch_size}, {args.batch_timeout} s): {dyn['throughput_per_s']}/s; "
            f"ratio {ratio:.2f}x"
        )
    checks = targets(results, ratio)
    for name, held in checks.items():
        print(f"  [{'ok' if held else 'MISSED'}] {name}")

    if args.out:
        import litserve

        out = {
            "benchmark": "serve_load",
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "cpu": cpu,
            "precision": "fp32",
            "torch": torch.__version__,
            "litserve": litserve.__version__,
            "python": platform.python_version(),
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "images": {"folder": str(folder), "count": len(images)},
            "bad_kinds": list(BAD_KINDS),
            "servers": results,
            "ratio_dynamic_over_batch1": None if ratio is None else round(ratio, 2),
            "targets": checks,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.check and not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
