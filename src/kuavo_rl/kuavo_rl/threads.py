"""How many torch threads each process of a run uses: never more than the cores it may have.

torch's default (one thread per core, in every process) oversubscribes a small machine as soon as
two processes compute at once: on 2 cores, a 2-thread update runs at a few percent of its 1-thread
rate while another process is busy, and the actor's 2-thread forward pass burned three times the
CPU of a 1-thread one. So: the actor acts on 1 thread; the learner (or the in-process trainer) gets
the cores of this run's share left after the env and the actor, at least 1; a process pool divides
the machine between its workers (KUAVO_RL_CPU_SHARE). No torch import here: the env node must not load it.
"""
from __future__ import annotations

import os

CPU_SHARE_ENV = "KUAVO_RL_CPU_SHARE"  # cores one run may use; set by the diagnostics' process pool
CORES_LEFT_FOR_ENV_AND_ACTOR = 2


def cpu_share() -> int:
    """Cores this run may use: KUAVO_RL_CPU_SHARE when set, else the cores this process may run on."""
    share = os.environ.get(CPU_SHARE_ENV, "")
    if share:
        try:
            value = int(share)
        except ValueError:
            raise ValueError(f"{CPU_SHARE_ENV}={share!r} is not a whole number of cores") from None
        if value < 1:
            raise ValueError(f"{CPU_SHARE_ENV}={share!r} must be >= 1")
        return value
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def learner_threads(configured: int) -> int:
    """learner.torch_threads: the configured count, or for 0 (auto) the share's cores minus one each for
    the env and the actor (which run beside the learner in the pipeline), at least 1."""
    if configured > 0:
        return configured
    return max(1, cpu_share() - CORES_LEFT_FOR_ENV_AND_ACTOR)


def set_torch_threads(threads: int) -> int:
    """Intra-op threads for this process, and one inter-op thread (our graphs have no parallel branches).
    Returns the thread count now in effect."""
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first inter-op work; then it stays as it was
        pass
    return torch.get_num_threads()


def pool_worker_share(jobs: int) -> int:
    """The cores each of `jobs` concurrent runs may use."""
    return max(1, cpu_share() // max(1, jobs))
