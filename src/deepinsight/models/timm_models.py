"""Any timm model as a DeepInsight backbone, with pretrained weights from the hub or a file.

``timm_backbone("convnext_tiny", in_chans=1, pretrained_file="w.safetensors")`` returns timm's
network with its classifier removed (``num_classes=0``: pooled features), the weights of the
file loaded strictly, and the input normalisation the weights were trained with.

What needs the internet: only ``pretrained=True`` without weights in the local cache. It never
hangs: the hub is probed first with a short timeout, and when it cannot be reached the cached
file is used if there is one, else the error names ``pretrained_file`` as the offline way.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from torch import nn

from deepinsight.errors import DeepInsightError, first_line

# Seconds to wait for the hub's TCP handshake before treating the machine as offline.
HUB_PROBE_TIMEOUT_S = 3.0


def _timm():
    import timm  # lazily: importing timm costs seconds, and the seed's models do not need it

    return timm


def check_name(name: str) -> None:
    """An unknown timm architecture is one line with the closest names timm knows."""
    timm = _timm()
    if timm.is_model(name):
        return
    known = timm.list_models()
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise DeepInsightError(
        f"unknown model '{name}': not a DeepInsight model (densenet121, custom_cnn, "
        f"efficientnet) nor one of timm's {len(known)} architectures{hint}"
    )


def timm_backbone(
    name: str,
    in_chans: int,
    pretrained: bool = False,
    pretrained_file: str | None = None,
    image_size: int | None = None,
    **timm_kwargs: Any,
) -> nn.Module:
    """timm's ``name`` without its classifier; weights from ``pretrained_file`` or the hub.

    ``image_size``: the size the data is resized to. A model built for one input size (ViTs:
    ``fixed_input_size`` in timm's config) is built for this one instead, and timm resamples
    pretrained position embeddings to it; other models ignore it.
    """
    timm = _timm()
    check_name(name)
    base = {"in_chans": in_chans, "num_classes": 0, **timm_kwargs}
    cfg = timm.models.get_pretrained_cfg(name)
    fixed = cfg is not None and cfg.fixed_input_size
    if image_size and fixed and "img_size" not in base and cfg.input_size[-1] != image_size:
        base["img_size"] = int(image_size)
    if pretrained_file:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise DeepInsightError(
                f"pretrained_file {path} not found; give the weights of a timm model "
                "(model.safetensors from its Hugging Face page, or a saved state dict)"
            )
        return create_with_weights(name, base, path)
    if not pretrained:
        return timm.create_model(name, pretrained=False, **base)
    return _from_hub(name, base)


# -- weights from a file --------------------------------------------------------------------
def create_with_weights(name: str, base: dict[str, Any], path: Path) -> nn.Module:
    """timm's model with the weights of ``path``, loaded the way timm loads its own.

    timm's loader applies the model's key filters (position-embedding resampling, converting
    original CLIP files), drops the classifier the weights were published with (DeepInsight
    puts its own one-logit head on the features) and sums a 3-channel stem's kernels for a
    1-channel model. It only logs keys that do not fit, though; here they are an error, so a
    file of another architecture never half-loads.
    """
    timm = _timm()
    problems: list[str] = []
    handler = _Collect(problems)
    logger = logging.getLogger("timm.models._builder")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        net = timm.create_model(
            name, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **base
        )
    except Exception as err:  # safetensors, pickle, zip and shape errors each have their type
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if lines and lines[0].startswith("Error(s) in loading state_dict") and len(lines) > 1:
            # torch's first line only says that it failed; the next one says what.
            raise DeepInsightError(
                f"pretrained_file {path} does not fit {name}: {first_line(lines[1], limit=200)}"
            ) from None
        raise DeepInsightError(
            f"pretrained_file {path} cannot be loaded into {name} ({first_line(err, limit=200)})"
        ) from None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    if problems:
        raise DeepInsightError(
            f"pretrained_file {path} does not fit {name}: {first_line(problems[0], limit=200)}"
        )
    return net


class _Collect(logging.Handler):
    """Keeps timm's messages about weights that did not fit."""

    PREFIXES = ("Missing keys", "Unexpected keys", "Unable to convert")

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(self.PREFIXES):
            self.into.append(message)


# -- weights from the hub -------------------------------------------------------------------
def _from_hub(name: str, base: dict[str, Any]) -> nn.Module:
    timm = _timm()
    # The source timm would download from, without building the model first.
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        raise DeepInsightError(
            f"timm publishes no pretrained weights for '{name}'; set pretrained=false, or give "
            "model.net.pretrained_file=PATH"
        )
    host, cached = _source(cfg)
    if not _reachable(host):
        if cached is None:
            raise DeepInsightError(
                f"pretrained=true needs to download the weights of '{name}' from {host}, which "
                "cannot be reached from this machine; download them where you are online "
                f"(timm.create_model('{name}', pretrained=True), or the model.safetensors of "
                f"https://huggingface.co/{cfg.hf_hub_id or 'timm'}) and give "
                "model.net.pretrained_file=PATH"
            )
        return create_with_weights(name, base, Path(cached))
    try:
        return timm.create_model(name, pretrained=True, **base)
    except (OSError, RuntimeError, ValueError) as err:  # download or load failures
        raise DeepInsightError(
            f"could not load the pretrained weights of '{name}' ({first_line(err, limit=200)}); "
            "give model.net.pretrained_file=PATH instead"
        ) from None


def _source(cfg: Any) -> tuple[str, str | None]:
    """(the host the weights come from, their local copy if one is cached)."""
    if cfg.hf_hub_id:
        import huggingface_hub
        from huggingface_hub import constants

        repo = cfg.hf_hub_id.split("@")[0]
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
        names += ["model.safetensors", "pytorch_model.bin"]
        for filename in names:
            found = huggingface_hub.try_to_load_from_cache(
                repo, filename, cache_dir=constants.HF_HUB_CACHE
            )
            if isinstance(found, str):
                return _host(constants.ENDPOINT), found
        return _host(constants.ENDPOINT), None
    import torch

    local = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
    return _host(cfg.url), str(local) if local.is_file() else None


def _host(url: str) -> str:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return f"{parsed.hostname}:{port}"


def _reachable(host: str) -> bool:
    """Whether a TCP connection to ``host`` (or the HTTPS proxy, if one is set) opens quickly."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        host = _host(proxy if "://" in proxy else f"http://{proxy}")
    name, _, port = host.rpartition(":")
    try:
        with socket.create_connection((name, int(port)), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


# -- the input normalisation the weights expect ----------------------------------------------
def pretrained_normalization(net: nn.Module, in_chans: int) -> tuple[list[float], list[float]]:
    """The mean/std of ``net``'s pretrained config (timm's ``resolve_data_config``).

    For one channel, the mean of the three: timm sums the stem's colour kernels, which
    matches a grey image normalised by a single mean/std when the three are close (they are
    for ImageNet's and CLIP's statistics).
    """
    config = _timm().data.resolve_data_config({}, model=net)
    mean, std = list(config["mean"]), list(config["std"])
    if in_chans == 1 and len(mean) == 3:
        mean, std = [sum(mean) / 3], [sum(std) / 3]
    return [float(m) for m in mean], [float(s) for s in std]


def pretrained_input(net: nn.Module) -> dict[str, Any]:
    """The input size and interpolation the pretrained weights were made for (advice only)."""
    config = _timm().data.resolve_data_config({}, model=net)
    return {"image_size": int(config["input_size"][-1]), "interpolation": config["interpolation"]}
