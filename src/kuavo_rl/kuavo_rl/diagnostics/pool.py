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

from kuavo_rl.progress import ProgressLine
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
                quiet: bool = False, stream=None, period_s: float = 5.0,
                progress_of: Callable[[Any], tuple[int, int]] | None = None, unit: str = "") -> list[TaskOutcome]:
    """Run func(task) for every task, each in a fresh spawned process (maxtasksperchild=1), `jobs` at a time,
    in the given order of submission. func and the tasks must be picklable (func at module level).

    Workers start with OMP_NUM_THREADS and MKL_NUM_THREADS 1 unless already set, and with their share of
    the cores (KUAVO_RL_CPU_SHARE: the cores divided among the `jobs` runs). A task that raises does not
    stop the others: its outcome carries the traceback. on_done(outcome) runs in the parent as each task
    finishes and returns the text shown after the progress line. The progress line (done/total, rate, ETA)
    is printed on every finished task and every `period_s` seconds in between; with `costs` (an estimate per
    task, any unit) its ETA is the remaining time from the estimates, rescaled by the speed seen so far.
    With `progress_of(task) -> (done, total)` (work units, e.g. env steps; polled for unfinished tasks, (0, total)
    for those not started) the line counts those units across all tasks, so work inside running tasks shows,
    and the remaining time weighs each task's estimate by its unfinished share.
    On KeyboardInterrupt (or any error in the parent) the pool is terminated and the exception re-raised.
    Returns the outcomes in the order they finished."""
    tasks = list(tasks)
    if not tasks:
        return []
    jobs = pool_size(jobs, len(tasks))
    stream = stream if stream is not None else sys.stderr
    costs = list(costs) if costs is not None else None
    finished: set[int] = set()
    totals = [progress_of(task)[1] for task in tasks] if progress_of is not None else None
    progress = ProgressLine(sum(totals) if totals else len(tasks), f"{label}{' ' + unit if unit else ''}",
                            period_s=period_s, stream=stream, enabled=not quiet)
    started = time.monotonic()

    def shares() -> list[float]:
        """Each task's done share: 1 when finished, else from progress_of (0 without it)."""
        if progress_of is None:
            return [1.0 if i in finished else 0.0 for i in range(len(tasks))]
        return [1.0 if i in finished else min(1.0, progress_of(task)[0] / max(totals[i], 1))
                for i, task in enumerate(tasks)]

    def show(last: str, force: bool = False) -> None:
        if not progress.due(force):
            return
        done = shares()
        eta_s = None
        if costs is not None:
            work_done = sum(c * d for c, d in zip(costs, done))
            if work_done > 0:
                eta_s = (sum(costs) - work_done) * (time.monotonic() - started) / work_done
        units = sum(round(t * d) for t, d in zip(totals, done)) if totals else len(finished)
        runs = f"{len(finished)}/{len(tasks)} finished" if totals else ""
        extra = " | ".join(part for part in (runs, last) if part)
        progress.update(units, extra, force=True, eta_s=eta_s)

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
                show(last)
                continue
            outcome = TaskOutcome(index, tasks[index], result, error)
            outcomes.append(outcome)
            finished.add(index)
            last = (on_done(outcome) if on_done is not None else None) or ""
            show(last, force=True)
        pool.close()
    except BaseException:
        pool.terminate()  # interrupted: unfinished tasks are killed
        raise
    finally:
        pool.join()
    return outcomes
