"""DDP under Hydra: every rank of a job runs that same job, in its run directory.

On one node Lightning starts ranks 1..N-1 by running the command line again
(``_SubprocessScriptLauncher``); under Hydra it only adds ``hydra.run.dir``. That is not
enough here: inside a multirun the command line is the whole sweep (``-m``, ``seed=1,2``,
``sweep=paper``), so every rank would start the sweep over. Rank 0 therefore hands its ranks the
exact job: the job's own overrides, its run directory and Hydra's RUN mode, through one
environment variable that :func:`adopt_job_argv` reads before Hydra parses the command line.

Ranks started by a cluster (SLURM's srun, torchrun) run the job they were given and need none
of this. A multirun runs its jobs one after the other in the rank-0 process, so after each job
that process waits for its ranks and forgets the job's process group and rendezvous variables;
otherwise Lightning would take the next job for one that was launched externally.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

JOB_ARGV_ENV = "DEEPINSIGHT_DDP_JOB_ARGV"
# What Lightning's launcher sets in the rank-0 process for the ranks it starts.
_RENDEZVOUS_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra options that pick the config itself, so a rank composes the same one.
_CONFIG_FLAGS = ("-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir")
RANK_EXIT_TIMEOUT_S = 300


def is_rank_zero() -> bool:
    """Whether this process is global rank 0 (from the launcher's environment, before DDP starts).

    Lightning's own guess: RANK, LOCAL_RANK or SLURM_PROCID, else 0.
    """
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _config_flags(argv: list[str]) -> list[str]:
    """The config-selecting options of a Hydra command line, with their values."""
    kept: list[str] = []
    for i, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in _CONFIG_FLAGS:
            kept += [arg] if "=" in arg else argv[i : i + 2]
    return kept


def job_argv(run_dir: str) -> list[str]:
    """The command-line arguments that make a rank run exactly this Hydra job in ``run_dir``."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    return [
        *_config_flags(sys.argv[1:]),
        *overrides,
        f"hydra.run.dir={json.dumps(str(run_dir))}",
        "hydra.output_subdir=null",  # .hydra/ is rank 0's
        "hydra.mode=RUN",
    ]


def adopt_job_argv() -> None:
    """In a rank started by Lightning for a DeepInsight job: replace the command line with the job.

    Call before Hydra parses ``sys.argv``. Does nothing in any other process.
    """
    local_rank = os.environ.get("LOCAL_RANK", "0")
    argv = os.environ.get(JOB_ARGV_ENV)
    if local_rank == "0" or not argv:
        return
    # A log file of its own: hydra.job.name names <run dir>/<job name>.log.
    sys.argv = [sys.argv[0], *json.loads(argv), f"hydra.job.name=train_ddp_process_{local_rank}"]


class RankGroup:
    """The ranks of one DDP job, seen from its rank-0 process.

    Usage in the task::

        with RankGroup(run_dir) as ranks:
            trainer = ranks.trainer = Trainer(...)
            trainer.fit(...)

    On entry it publishes the job for the ranks Lightning is about to start; on exit it waits
    for them (or stops them when the job failed) and removes what the job left in this process.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = str(run_dir)
        self.trainer: Any = None
        self._env_before: dict[str, str | None] = {}

    def __enter__(self) -> RankGroup:
        self._env_before = {k: os.environ.get(k) for k in (*_RENDEZVOUS_ENV, JOB_ARGV_ENV)}
        if self._launches_ranks():
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.initialized():
                os.environ[JOB_ARGV_ENV] = json.dumps(job_argv(self.run_dir))
        return self

    def _launches_ranks(self) -> bool:
        # LOCAL_RANK already set: a cluster or torchrun started this process, not Lightning.
        return self._env_before.get("LOCAL_RANK") is None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._launches_ranks():
            return
        self._release_ranks(failed=exc_type is not None)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in self._env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _release_ranks(self, failed: bool) -> None:
        launcher = getattr(getattr(self.trainer, "strategy", None), "launcher", None)
        procs: list[subprocess.Popen] = list(getattr(launcher, "procs", None) or [])
        if not procs:
            return
        # Lightning's watchdog thread shares this list and kills this whole process once a rank
        # exits non-zero; emptied, it stops watching, so stopping the ranks of a failed job
        # does not end the rest of a multirun.
        launcher.procs.clear()
        for proc in procs:
            if failed:
                proc.kill()
            try:
                proc.wait(timeout=RANK_EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("DDP rank (pid %d) did not exit; stopping it", proc.pid)
                proc.kill()
                proc.wait()
