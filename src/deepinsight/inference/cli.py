"""Hydra-style ``key=value`` command lines for the inference tools, without a Hydra app.

``predict`` and ``export`` are one-shot tools that write exactly the file the user names, so they
compose their config with Hydra's compose API: the same override syntax as training
(``inputs=[a.jpg,dir,"g/*.png"]``), but no run directory, no ``.hydra/`` and no log file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from deepinsight.config import config_dir
from deepinsight.errors import DeepInsightError

HELP_FLAGS = ("-h", "--help")


def compose_command_config(config_name: str, argv: Sequence[str]) -> dict[str, Any]:
    """``conf/<config_name>.yaml`` with ``argv`` overrides applied, as a plain dict.

    Bad syntax, unknown keys and missing required values are user errors (one line each).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    # Called in-process (tests, a notebook, another Hydra app), Hydra may be initialised
    # already: compose with a fresh instance and put the caller's back afterwards.
    caller_hydra = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name, overrides=list(argv))
    except HydraException as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DeepInsightError(
            f"bad argument: {reason} Valid options: {', '.join(known_options(config_name))}"
        ) from None
    finally:
        restore_gh_from_backup(caller_hydra)
    return _to_plain_dict(cfg, config_name)


def _to_plain_dict(cfg: DictConfig, config_name: str) -> dict[str, Any]:
    known = known_options(config_name)
    unknown = [key for key in cfg if key not in known]
    if unknown:
        raise DeepInsightError(
            f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(known)}"
        )
    missing = [key for key in cfg if OmegaConf.is_missing(cfg, key)]
    if missing:
        raise DeepInsightError(f"{' and '.join(f'{k}=...' for k in missing)} is required")
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def known_options(config_name: str) -> list[str]:
    """The keys of ``conf/<config_name>.yaml``, in file order."""
    return [str(key) for key in OmegaConf.load(config_path(config_name)).keys()]


def config_path(config_name: str) -> Path:
    return Path(config_dir()) / f"{config_name}.yaml"


def wants_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def print_help(usage: str, config_name: str) -> None:
    """The command's usage, then its config file, whose comments document every option."""
    print(usage.strip())
    print(f"\nOptions (key=value), from {config_path(config_name)}:\n")
    print(config_path(config_name).read_text().strip())


def argv_or_sys(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
