"""Hydra/OmegaConf glue: where the configs live and the resolvers they use.

Resolvers are registered on import, so anything that composes DeepInsight configs
(the entry points, the tests, a notebook) imports this module first.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from deepinsight.data.demo import default_cache_dir, is_demo_root
from deepinsight.data.transforms import channels_for, variant_name
from deepinsight.progress import stdout_is_terminal


def config_dir() -> str:
    """Absolute path of the config tree (override with $DEEPINSIGHT_CONFIG_DIR).

    The configs are edited in the repository's top-level ``conf/``, which pyproject.toml ships
    as the package ``deepinsight.conf``: an editable install resolves it to ``conf/`` itself, a
    wheel to its installed copy, so the console scripts work from any directory.
    """
    override = os.environ.get("DEEPINSIGHT_CONFIG_DIR")
    if override:
        return str(Path(override).resolve())
    return str(resources.files("deepinsight.conf"))


def _if_demo(root: Any, demo_value: Any, dataset_value: Any) -> Any:
    """Pick a default by data source: fast on the demo data, the seed's settings on real data."""
    return demo_value if is_demo_root(root) else dataset_value


# NHWC pays on the CPU too: DenseNet121 training, 64 px, 2 cores, 1.28x in fp32 and, with bf16
# autocast, 2.01x fp32 NCHW (benchmarks/train_throughput.py --knobs; docs/speed.md).
CPU_CHANNELS_LAST = True


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere autocast to bf16
    emulates it and is slower than fp32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def auto_precision(accelerator: Any = "auto") -> str:
    """The precision for the device ``trainer.accelerator`` trains on.

    On CUDA: bf16 mixed where the GPU supports it, else fp16 mixed. On the CPU: bf16 mixed where
    it is native (1.57x fp32 for DenseNet121 training on 2 cores), else fp32. ``auto`` is CUDA
    when a GPU is visible, so ``trainer.accelerator=cpu`` on a GPU machine gets CPU precision.
    Test-time scores are float32 either way (the LightningModule turns autocast off there).
    """
    import torch

    if is_gpu(accelerator):
        if not torch.cuda.is_available():
            return "16-mixed"  # Lightning reports the missing GPU itself
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if str(accelerator) in ("cpu", "auto"):
        return "bf16-mixed" if cpu_has_bf16() else "32-true"
    return "32-true"  # mps, tpu, ...: full precision unless asked otherwise


def channels_last_default() -> bool:
    """NHWC training: on with CUDA (tensor-core convolutions want it); on the CPU as measured."""
    import torch

    return torch.cuda.is_available() or CPU_CHANNELS_LAST


def cudnn_benchmark(deterministic: Any) -> bool:
    """cuDNN autotuning whenever CUDA is used, unless a deterministic run is asked for."""
    return not bool(deterministic)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (what a container, ``taskset`` or a
    SLURM cgroup allows), and no more than SLURM's ``--cpus-per-task`` when that is set.
    ``os.cpu_count()`` counts the whole node instead."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cpus = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return max(1, cpus)


def default_workers() -> int:
    """Data-loading processes: one per usable CPU, at most 8 (more rarely helps one GPU)."""
    return min(8, usable_cpus())


def cache_dir() -> str:
    """``paths.cache_dir``'s default: $DEEPINSIGHT_CACHE, $XDG_CACHE_HOME/deepinsight or
    ~/.cache/deepinsight."""
    return str(default_cache_dir())


def dataset_label(root: Any) -> str:
    """A short name for ``data.root`` in study and folder names: ``demo``, or the folder's name."""
    if is_demo_root(root):
        return "demo"
    name = Path(str(root)).expanduser().absolute().name or "root"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def wandb_mode() -> str:
    """W&B runs offline unless the user has set it up to go online.

    Online only when $WANDB_MODE says so, or an API key is configured ($WANDB_API_KEY or a
    netrc entry for api.wandb.ai). This keeps a fresh machine from ever waiting on the network.
    """
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if "api.wandb.ai" in netrc.read_text():
            return "online"
    except OSError:
        pass
    return "offline"


def sweep_group() -> str | None:
    """Runs of one multirun share a W&B group: the sweep directory's name. Single runs: none."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
    except (ImportError, ValueError):
        return None
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return Path(hydra_cfg.sweep.dir).name
    return None


def is_gpu(accelerator: Any) -> bool:
    """Whether a Trainer ``accelerator`` setting means CUDA GPUs (``auto``: when one is there)."""
    import torch

    if str(accelerator) in ("gpu", "cuda"):
        return True
    return str(accelerator) == "auto" and torch.cuda.is_available()


def slurm_devices(devices: Any) -> int:
    """``trainer.devices`` as the GPUs (and tasks) per node of a SLURM allocation: a number.

    ``auto`` or ``-1`` mean "whatever the node has", which the submitting machine cannot know.
    """
    from deepinsight.errors import DeepInsightError

    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        return len(devices)
    text = str(devices).strip()
    if not text.isdigit() or int(text) < 1:
        raise DeepInsightError(
            f"hydra/launcher=submitit_slurm needs trainer.devices as the GPUs per node, "
            f"e.g. trainer.devices=4 (got {devices!r}): it sets the SLURM allocation"
        )
    return int(text)


def sqlite_url(path: str) -> str:
    """The SQLAlchemy URL of the SQLite file ``path``, its folder created (SQLite will not)."""
    file = Path(path).absolute()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


def held_in_generators(held_out: Any) -> list[str]:
    """The mix demo's generators other than ``held_out`` (one name or a list): a fold's
    training generators (sweep=logo)."""
    from deepinsight.data.demo_decoders import MIX_GENERATORS

    out = [held_out] if isinstance(held_out, str) else [str(g) for g in held_out]
    return [name for name in MIX_GENERATORS if name not in out]


def register_resolvers() -> None:
    resolvers = {
        "di.held_in": held_in_generators,
        "di.if_demo": _if_demo,
        "di.variant": variant_name,
        "di.cache_dir": cache_dir,
        "di.dataset_label": dataset_label,
        "di.channels": channels_for,
        "di.precision": auto_precision,
        "di.workers": default_workers,
        "di.channels_last": channels_last_default,
        "di.cudnn_benchmark": cudnn_benchmark,
        "di.wandb_mode": wandb_mode,
        "di.sweep_group": sweep_group,
        "di.stdout_is_terminal": stdout_is_terminal,
        "di.is_gpu": is_gpu,
        "di.sqlite_url": sqlite_url,
        "di.slurm_devices": slurm_devices,
    }
    for name, fn in resolvers.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)


register_resolvers()
