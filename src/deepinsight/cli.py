"""The command-line style of DeepInsight's one-shot tools: ``predict``, ``export`` and ``report``.

Each tool's options are the keys of one config file, ``conf/<tool>.yaml``, whose comments
document them; a command line is Hydra overrides of that file (``key=value``, lists as
``inputs=[a.jpg,dir,"g/*.png"]``), composed with Hydra's public compose API. ``--help`` prints
the tool's usage and that file. Mistakes (bad syntax, unknown keys, missing values) are one
``error:`` line and exit code 2, like every other user error.

``train`` shares the override syntax but is a ``@hydra.main`` application, because it needs what
only an application gets: run directories, multiruns and sweeps. The tools write exactly the
file the user names, so they compose without a run directory, ``.hydra/`` or log file, and
``main(argv)`` runs in-process (tests, notebooks, inside another Hydra app).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from omegaconf import DictConfig, OmegaConf

from deepinsight.config import config_dir
from deepinsight.errors import EXIT_OK, DeepInsightError, first_line, run_cli

HELP_FLAGS = ("-h", "--help")


def compose_command_config(config_name: str, overrides: Sequence[str]) -> dict[str, Any]:
    """``conf/<config_name>.yaml`` with ``overrides`` applied, as a plain dict.

    Bad syntax, unknown keys and missing required values are user errors (one line each).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    # Called in-process (tests, a notebook, another Hydra app), Hydra may be initialised for
    # another config tree: compose with a fresh instance and give the caller's back afterwards.
    caller = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides))
    except HydraException as err:
        raise DeepInsightError(
            f"bad argument: {first_line(err)} "
            f"Valid options: {', '.join(known_options(config_name))}"
        ) from None
    finally:
        if caller is not None:
            GlobalHydra.instance().clear()
            GlobalHydra.instance().initialize(caller)
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


def print_help(usage: str, config_name: str) -> None:
    """The command's usage, then its config file, whose comments document every option."""
    print(usage.strip())
    print(f"\nOptions (key=value), from {config_path(config_name)}:\n")
    print(config_path(config_name).read_text().strip())


def run_command(
    run: Callable[[list[str]], int],
    argv: Sequence[str] | None,
    usage: str,
    config_name: str,
) -> NoReturn:
    """A tool's ``main``: ``--help``, or ``run(argv)``; exits with its code (user errors: 2).

    ``argv`` defaults to the process's arguments, so ``main(argv)`` also runs in-process.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in HELP_FLAGS for arg in args):
        print_help(usage, config_name)
        raise SystemExit(EXIT_OK)
    raise SystemExit(run_cli(lambda: run(args)))
