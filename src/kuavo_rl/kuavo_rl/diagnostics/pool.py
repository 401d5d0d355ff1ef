"""Run independent tasks (training runs) in a pool of spawned processes, one task per process.

Kept free of heavy imports: spawned workers import this module for the initializer, which must set
the thread counts before numpy or torch are loaded.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from kuavo_rl.progress import ProgressLine, format_duration
from kuavo_rl.threads import CPU_SHARE_ENV, pool_worker_share


@dataclass
class TaskOutcome:
    index: int  # position in the task list
    task: Any  # the task as given (the parent's object, not the worker's copy)
    result: Any = None  # what the function returned
    error: str | None = None  # the traceback if it raised


def pool_size(jobs: int | None, n_tasks: int) -> int:
    """Processes to use: `jobs` (default: CPU count), at most one per task, at least 1."""
    return max(1, min(jobs or os.cpu_count() or 1, n_tasks or 1))


def _worker_init(share: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ[CPU_SHARE_ENV] = str(share)  # what learner.torch_threads: 0 (auto) divides among the run's processes


def _call(item: tuple[Callable, int, Any]) -> tuple[int, Any, str | None]:
    func, index, task = item
    try:
        return index, func(task), None
    except Exception:  # reported to the parent, which decides what a failed task means
        return index, None, traceback.format_exc()


def run_in_pool(func: Callable[[Any], Any], tasks: Sequence[Any], jobs: int | None = None, label: str = "pool",
                costs: Sequence[float] | None = None, on_done: Callable[[TaskOutcome], str | None] | None = None,
                quiet: bool = False, stream=None, period_s: float = 5.0) -> list[TaskOutcome]:
    """Run func(task) for every task, each in a fresh spawned process (maxtasksperchild=1), `jobs` at a time,
    in the given order of submission. func and the tasks must be picklable (func at module level).

    Workers start with OMP_NUM_THREADS and MKL_NUM_THREADS 1 unless already set, and with their share of
    the cores (KUAVO_RL_CPU_SHARE: the cores divided among the `jobs` runs). A task that raises does not
    stop the others: its outcome carries the traceback. on_done(outcome) runs in the parent as each task
    finishes and returns the text shown after the progress line. The progress line (done/total, rate, ETA)
    is printed on every finished task and every `period_s` seconds in between; with `costs` (an estimate per
    task, any unit) it also shows the remaining time from the estimates, rescaled by the speed seen so far.
    On KeyboardInterrupt (or any error in the parent) the pool is terminated and the exception re-raised.
    Returns the outcomes in the order they finished."""
    tasks = list(tasks)
    if not tasks:
        return []
    jobs = pool_size(jobs, len(tasks))
    stream = stream if stream is not None else sys.stderr
    progress = ProgressLine(len(tasks), label, period_s=period_s, stream=stream, enabled=not quiet)
    started = time.monotonic()
    total_cost, finished_cost = (sum(costs) if costs is not None else 0.0), 0.0

    def status(last: str) -> str:
        if costs is None:
            return last
        ratio = (time.monotonic() - started) * jobs / finished_cost if finished_cost else 1.0
        estimate = f"estimated remaining {format_duration((total_cost - finished_cost) * ratio / jobs)}"
        return f"{estimate} | {last}" if last else estimate

    outcomes: list[TaskOutcome] = []
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_init,
                                                      initargs=(pool_worker_share(jobs),), maxtasksperchild=1)
    try:
        results = pool.imap_unordered(_call, [(func, i, task) for i, task in enumerate(tasks)])
        last = ""
        while len(outcomes) < len(tasks):
            try:
                index, result, error = results.next(timeout=period_s)
            except multiprocessing.TimeoutError:
                progress.update(len(outcomes), status(last))
                continue
            outcome = TaskOutcome(index, tasks[index], result, error)
            outcomes.append(outcome)
            if costs is not None:
                finished_cost += costs[index]
            last = (on_done(outcome) if on_done is not None else None) or ""
            progress.update(len(outcomes), status(last), force=True)
        pool.close()
    except BaseException:
        pool.terminate()  # interrupted: unfinished tasks are killed
        raise
    finally:
        pool.join()
    return outcomes
