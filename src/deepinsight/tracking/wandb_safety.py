"""W&B that never hangs: go online only when the W&B server answers, else log offline.

Left to itself, ``wandb.init`` in online mode retries an unreachable server for about 90 s and
then raises, which fails the run (measured with wandb 0.31 against a closed local port). One
quick request to the server first decides instead: if it does not answer, this process switches
W&B to offline mode (the run's files stay in ``RUN_DIR/wandb/``), and says once how to upload
them later with ``wandb sync``.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_SERVER = "https://api.wandb.ai"
# Long enough for a distant server over a slow link, short next to wandb's own 90 s.
PROBE_TIMEOUT_S = 5.0

# Servers found unreachable by this process: asked once, warned about once.
_unreachable: set[str] = set()


def server_url() -> str:
    """The W&B server this process would talk to ($WANDB_BASE_URL, else the public one)."""
    return (os.environ.get("WANDB_BASE_URL") or DEFAULT_SERVER).rstrip("/")


def server_answers(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True if anything answers HTTP at ``url`` (any status counts: the server is there)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):  # refused, timed out, no route, DNS failure, bad URL
        return False


def safe_wandb_mode(mode: str | None, save_dir: str | Path | None = None) -> str | None:
    """The mode W&B should run in: ``mode`` itself, except online when the server is unreachable.

    Switching also sets ``WANDB_MODE=offline`` for this process (and the DDP ranks it starts),
    because wandb reads that variable too, and later runs of a multirun then skip the check.
    """
    if mode != "online":
        return mode
    url = server_url()
    if url not in _unreachable and server_answers(url):
        return mode
    if url not in _unreachable:
        _unreachable.add(url)
        where = Path(save_dir or ".") / "wandb"
        log.warning(
            "W&B server %s did not answer (waited at most %.0f s): logging offline instead (this "
            "process stays offline). Upload later with: wandb sync %s/offline-run-*",
            url,
            PROBE_TIMEOUT_S,
            where,
        )
    os.environ["WANDB_MODE"] = "offline"
    return "offline"
