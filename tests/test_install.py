"""DeepInsight installs anywhere: a wheel in a fresh virtualenv outside the repository finds the
configs it ships, and its console scripts run from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from helpers.cli_runs import FAST_DEV_RUN

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 600


def test_pyproject_lists_every_package():
    """The package list is explicit (conf/ is mapped in), so a new subpackage must be added."""
    tomllib = pytest.importorskip("tomllib")
    from setuptools import find_packages

    setuptools_cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert sorted(setuptools_cfg["packages"]) == sorted(
        [*find_packages(REPO / "src"), "deepinsight.conf"]
    )
    assert setuptools_cfg["package-dir"]["deepinsight.conf"] == "conf"


def _scripts_dir(env_dir: Path) -> Path:
    return env_dir / ("Scripts" if os.name == "nt" else "bin")


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> dict[str, Path]:
    """One wheel, installed without dependencies into a fresh virtualenv outside the repository.

    The virtualenv reuses this interpreter's installed dependencies through a .pth file (no
    network), but not its editable DeepInsight: .pth files inside a directory added that way
    are not processed, so only the wheel's copy is importable.
    """
    work = tmp_path_factory.mktemp("install")
    # Build from a copy so the build leaves nothing (build/, egg-info) in the shared checkout.
    source = work / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(REPO / "src", source / "src", ignore=skip)
    shutil.copytree(REPO / "conf", source / "conf", ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", source],
        work,
        dict(os.environ),
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-3000:]
    (wheel,) = (work / "dist").glob("deepinsight-*.whl")

    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = _scripts_dir(env_dir) / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = _run([python, "-c", where], work, {})
    shared = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(purelib.stdout.strip()) / "deepinsight_test_deps.pth").write_text("\n".join(shared))
    install = _run(
        [python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", wheel],
        work,
        dict(os.environ),
    )
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return {"env": env_dir, "bin": _scripts_dir(env_dir), "cwd": elsewhere}


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:
    """No repository paths and no config override leak into the installed commands."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "DEEPINSIGHT_CONFIG_DIR", "VIRTUAL_ENV")
    }
    return {**env, "WANDB_MODE": "offline", "DEEPINSIGHT_CACHE": str(tmp_path / "cache")}


@pytest.mark.slow
def test_wheel_ships_the_configs(wheel_env, clean_env):
    probe = _run(
        [
            wheel_env["bin"] / "python",
            "-c",
            "import deepinsight, deepinsight.config as c; from importlib import resources; "
            "print(deepinsight.__file__); print(c.config_dir()); "
            "page = resources.files('deepinsight.serve') / 'static'; "
            "print(*sorted(p.name for p in page.iterdir()))",
        ],
        wheel_env["cwd"],
        clean_env,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    package_file, conf, static = probe.stdout.splitlines()
    assert Path(package_file).is_relative_to(wheel_env["env"])  # not the repository's copy
    assert Path(conf).is_relative_to(wheel_env["env"]) and Path(conf).name == "conf"

    def yaml_files(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.yaml"))

    assert yaml_files(Path(conf)) == yaml_files(REPO / "conf")
    # The server's web page ships too (the package above is the wheel's, not the checkout's).
    shipped = sorted(p.name for p in (REPO / "src/deepinsight/serve/static").iterdir())
    assert static.split() == shipped and "index.html" in shipped


@pytest.mark.slow
def test_console_scripts_run_from_another_directory(wheel_env, clean_env, tiny_dataset):
    scripts, cwd = wheel_env["bin"], wheel_env["cwd"]

    train_help = _run([scripts / "deepinsight-train", "--help"], cwd, clean_env)
    assert train_help.returncode == 0, train_help.stderr[-3000:]
    assert "model: _training, clip_probe, custom_cnn, densenet121, efficientnet, timm" in (
        train_help.stdout
    )

    predict_help = _run([scripts / "deepinsight-predict", "--help"], cwd, clean_env)
    assert predict_help.returncode == 0, predict_help.stderr[-3000:]
    assert "ckpt:" in predict_help.stdout and str(wheel_env["env"]) in predict_help.stdout

    run_dir = cwd / "run"
    train = _run(
        [
            scripts / "deepinsight-train",
            *FAST_DEV_RUN,
            "logger=none",
            f"data.root={tiny_dataset}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd,
        clean_env,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["model"] == "custom_cnn"
