"""Sweeps over a YAML grid: expand to runs, validate every run's config before anything runs,
run them in a process pool (one run per process), skip finished runs on a rerun.

Sweep file format::

    name: seed_recipe
    threshold: 0.9            # steps-to-threshold, as a task score (0 = random policy, 1 = optimal)
    base:                     # an experiment config (sections as in config/toy_mse.yaml)
      env: {action_dim: 2, target: 0.5}
      run: {total_env_steps: 3000}
    studies:
      - name: reward_type     # directory name under the runs root
        title: "Reward type"  # plot / report title
        variable: reward type # human label of the variable under study
        compare: reward.type  # grid key whose values are the lines of one panel (default: first key)
        finding: reward_type  # optional: the seed finding this study tests (a key of report.FINDINGS)
        threshold: 0.9        # optional, overrides the top-level one
        seeds: [0, 1]
        set: {run.total_env_steps: 4000}          # study-wide overrides (dotted keys)
        grid:                 # mapping = cartesian product; a list of mappings = union of products
          env.action_dim: [2, 6]
          reward.type: [mse, shaped]
          backend:            # a key without a dot is a bundle axis: named sets of overrides
            sb3_sac: {algo.backend: sb3_sac}
            sb3_ppo: {algo.backend: sb3_ppo, algo.ppo_n_steps: 512}

Each run's config is base <- study `set` <- grid point <- run.seed, given to config_from_dict, so
every key in it counts as set explicitly and a backend that cannot honour one refuses it.
Run directories: <runs_root>/<study>/<slug>_seed<k>, the slug made from the grid point
(deterministic). A finished run has done.yaml; a run directory without it is wiped and rerun.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuavo_rl.config import ConfigError, ExperimentConfig, config_from_dict
from kuavo_rl.diagnostics.pool import TaskOutcome, pool_size, run_in_pool
from kuavo_rl.metrics import reference_returns
from kuavo_rl.progress import format_duration


class SweepError(ConfigError):
    """An invalid sweep file or a run whose configuration cannot run."""


@dataclass
class RunSpec:
    study: str
    run_id: str  # "<study>/<slug>_seed<k>"
    slug: str  # configuration slug (shared by its seeds)
    label: str  # human label of the configuration, e.g. "action_dim=6, reward.type=mse, backend=sb3_sac"
    point: dict[str, Any]  # grid axis -> value (bundle axes: the bundle's name)
    overrides: dict[str, Any]  # dotted key -> value, study set + grid point + seed
    config: dict[str, Any]  # the resolved config dict
    seed: int

    def dir(self, runs_root: str | Path) -> Path:
        return Path(runs_root) / self.run_id

    def experiment(self) -> ExperimentConfig:
        return config_from_dict(self.config)


@dataclass
class Study:
    name: str
    title: str
    variable: str
    compare: str
    finding: str | None
    threshold: float
    seeds: list[int]
    axes: list[str]
    runs: list[RunSpec] = field(default_factory=list)


@dataclass
class Sweep:
    name: str
    path: Path | None
    threshold: float
    studies: list[Study]

    @property
    def runs(self) -> list[RunSpec]:
        return [r for s in self.studies for r in s.runs]

    def study(self, name: str) -> Study:
        for s in self.studies:
            if s.name == name:
                return s
        raise SweepError(f"no study named '{name}' (studies: {', '.join(s.name for s in self.studies)})")


# ---- expansion ---------------------------------------------------------------------------------
def _set_dotted(config: dict, key: str, value: Any, where: str) -> None:
    if "." not in key:
        raise SweepError(f"{where}: override key '{key}' must be section.key, e.g. algo.lr")
    section, name = key.split(".", 1)
    config.setdefault(section, {})
    if not isinstance(config[section], dict):
        raise SweepError(f"{where}: section '{section}' is not a mapping")
    config[section][name] = copy.deepcopy(value)


def _flatten(config: dict) -> dict[str, Any]:
    return {f"{s}.{k}": v for s, values in config.items() if isinstance(values, dict) for k, v in values.items()}


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "x".join(_value_text(v) for v in value)
    return str(value)


def _slug(point: dict[str, Any]) -> str:
    shorts = [k.rsplit(".", 1)[-1] for k in point]
    parts = []
    for key, short in zip(point, shorts):
        name = short if shorts.count(short) == 1 else key.replace(".", "_")
        parts.append(f"{name}-{_value_text(point[key])}" if "." in key else _value_text(point[key]))
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", "_".join(parts)) or "base"
    if len(slug) > 100:
        slug = slug[:90] + "-" + hashlib.sha1(slug.encode()).hexdigest()[:8]
    return slug


def _grid_points(grid: Any, where: str) -> tuple[list[str], list[tuple[dict, dict]]]:
    """-> (axis names, [(point, overrides)]) for a mapping (product) or list of mappings (union)."""
    if grid is None:
        return [], [({}, {})]
    blocks = grid if isinstance(grid, list) else [grid]
    axes: list[str] = []
    points: list[tuple[dict, dict]] = []
    for b, block in enumerate(blocks):
        if not isinstance(block, dict) or not block:
            raise SweepError(f"{where}: grid block {b} must be a non-empty mapping of key -> list of values")
        choices = []
        for axis, values in block.items():
            if axis not in axes:
                axes.append(axis)
            if "." in axis:
                if not isinstance(values, list) or not values:
                    raise SweepError(f"{where}: grid key '{axis}' needs a non-empty list of values")
                choices.append([(axis, v, {axis: v}) for v in values])
            else:
                if not isinstance(values, dict) or not values:
                    raise SweepError(f"{where}: bundle axis '{axis}' needs a mapping of name -> overrides")
                options = []
                for name, overrides in values.items():
                    if not isinstance(overrides, dict):
                        raise SweepError(f"{where}: bundle '{axis}.{name}' must be a mapping of dotted keys")
                    options.append((axis, str(name), dict(overrides)))
                choices.append(options)
        for combo in itertools.product(*choices):
            point = {axis: value for axis, value, _ in combo}
            overrides: dict[str, Any] = {}
            for _, _, o in combo:
                overrides.update(o)
            points.append((point, overrides))
    return axes, points


def expand(data: dict, path: Path | None = None) -> Sweep:
    """Expand a sweep mapping into runs and validate every run's configuration (all errors at once)."""
    where = str(path) if path else "sweep"
    if not isinstance(data, dict) or "studies" not in data:
        raise SweepError(f"{where}: a sweep needs 'name', 'base' and 'studies'")
    unknown = set(data) - {"name", "base", "studies", "threshold", "description"}
    if unknown:
        raise SweepError(f"{where}: unknown top-level keys {sorted(unknown)}")
    base = data.get("base") or {}
    threshold = float(data.get("threshold", 0.9))
    studies, errors, seen = [], [], set()
    for i, sd in enumerate(data["studies"] or []):
        if not isinstance(sd, dict) or "name" not in sd:
            raise SweepError(f"{where}: study {i} needs a name")
        unknown = set(sd) - {"name", "title", "variable", "compare", "finding", "threshold", "seeds", "set", "grid"}
        if unknown:
            raise SweepError(f"{where}: study '{sd['name']}': unknown keys {sorted(unknown)}")
        name = str(sd["name"])
        if name in seen or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise SweepError(f"{where}: study name '{name}' must be unique and use only letters, digits, _ . -")
        seen.add(name)
        swhere = f"{where}: study '{name}'"
        axes, points = _grid_points(sd.get("grid"), swhere)
        compare = sd.get("compare", axes[0] if axes else "")
        if axes and compare not in axes:
            raise SweepError(f"{swhere}: compare '{compare}' is not a grid key ({axes})")
        seeds = [int(s) for s in sd.get("seeds", [0])]
        study = Study(name, str(sd.get("title", name)), str(sd.get("variable", compare)), compare,
                      sd.get("finding"), float(sd.get("threshold", threshold)), seeds, axes)
        study_set = sd.get("set") or {}
        slugs: dict[str, dict] = {}
        for point, point_overrides in points:
            slug = _slug(point)
            if slug in slugs and slugs[slug] != point:
                slug += "-" + hashlib.sha1(repr(sorted(point.items())).encode()).hexdigest()[:6]
            slugs[slug] = point
            label = ", ".join(f"{k}={_value_text(v)}" for k, v in point.items()) or "base"
            for seed in seeds:
                overrides = {**study_set, **point_overrides, "run.seed": seed}
                config = copy.deepcopy(base)
                run_id = f"{name}/{slug}_seed{seed}"
                try:
                    for key, value in overrides.items():
                        _set_dotted(config, key, value, f"{swhere}, run {run_id}")
                    config_from_dict(config)
                except ConfigError as error:
                    errors.append(f"run {run_id}: {error}")
                    continue
                study.runs.append(RunSpec(name, run_id, slug, label, point, overrides, config, seed))
        studies.append(study)
    if errors:
        raise SweepError(f"{where}: {len(errors)} run(s) cannot run (nothing was started):\n  " + "\n  ".join(errors))
    return Sweep(str(data.get("name", path.stem if path else "sweep")), path, threshold, studies)


def load_sweep(path: str | Path) -> Sweep:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file not found: {path}")
    return expand(yaml.safe_load(path.read_text()) or {}, path)


# ---- running -----------------------------------------------------------------------------------
# Batch 256, one run per core on this 2-core machine with the other core busy (seed_mechanisms' runs)
UPDATES_PER_S = {"lerobot_sac": 34.0, "sb3_sac": 42.0}


def estimate_seconds(cfg: ExperimentConfig) -> float:
    """Rough single-core cost of a run (measured speeds on this machine), for ordering and ETA."""
    steps = cfg.run.total_env_steps
    if cfg.algo.backend == "sb3_ppo":
        return 5.0 + steps / 900.0
    updates = max(0, steps - cfg.algo.learning_starts) * cfg.algo.utd_ratio
    return 8.0 + steps / 600.0 + updates / UPDATES_PER_S.get(cfg.algo.backend, 40.0)


def run_one(spec: RunSpec, run_dir: str | Path, quiet: bool = True) -> dict:
    """Train one run into run_dir (wiped first) and write done.yaml last."""
    run_dir = Path(run_dir)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cfg = spec.experiment()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    started, wall = time.time(), time.monotonic()
    if cfg.algo.backend == "sb3_ppo":
        from kuavo_rl.diagnostics.ppo import train_ppo
        train_ppo(cfg, run_dir, quiet=quiet)
    else:
        from kuavo_rl.inprocess import train_inprocess
        train_inprocess(cfg, run_dir, quiet=quiet)
    from kuavo_rl.run_log import read_rows
    rows = read_rows(run_dir / "episodes.csv")
    evals = [r for r in rows if r.get("evaluation")]
    final = evals[-max(cfg.actor.final_eval_episodes, 1):]
    random_raw, optimum_raw = reference_returns(cfg, raw=True)  # raw env reward: comparable across shapings
    done = {
        "run_id": spec.run_id, "study": spec.study, "label": spec.label, "seed": spec.seed,
        "overrides": spec.overrides, "backend": cfg.algo.backend,
        "env_steps": int(max((r["env_steps"] for r in rows), default=0)),
        "final_eval_return": sum(r["return"] for r in final) / len(final) if final else None,
        "final_eval_raw_return": sum(r["raw_return"] for r in final) / len(final) if final else None,
        "first_eval_return": evals[0]["return"] if evals else None,
        "random_raw_return": random_raw, "optimal_raw_return": optimum_raw,
        "started_at": started, "finished_at": time.time(), "wall_time_s": round(time.monotonic() - wall, 2),
        "pid": os.getpid(),
    }
    tmp = run_dir / "done.yaml.tmp"
    tmp.write_text(yaml.safe_dump(done, sort_keys=False))
    tmp.replace(run_dir / "done.yaml")
    return done


def last_env_steps(episodes_csv: Path, since: float) -> int:
    """The env steps of the last episode a running run logged (0: none yet, or a file older than `since`,
    left by an interrupted earlier attempt that is about to be wiped). Reads only the file's tail."""
    try:
        with episodes_csv.open("rb") as handle:
            if os.fstat(handle.fileno()).st_mtime < since:
                return 0
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 512))
            lines = handle.read().decode(errors="replace").split("\n")[:-1]  # not a line still being written
    except OSError:
        return 0
    for line in reversed(lines):
        first = line.split(",", 1)[0]
        if first.isdigit():
            return int(first)
    return 0


def _pool_task(args: tuple[RunSpec, str]) -> dict:
    """One run in a pool process. If it raises, the run stays without done.yaml and reruns next time."""
    spec, run_dir = args
    return run_one(spec, run_dir)


@dataclass
class SweepResult:
    executed: list[str]
    skipped: list[str]
    failed: dict[str, str]
    wall_time_s: float


def run_sweep(sweep: Sweep, runs_root: str | Path, jobs: int | None = None, only: str | None = None,
              quiet: bool = False, stream=sys.stderr) -> SweepResult:
    runs_root = Path(runs_root)
    studies = [sweep.study(only)] if only else sweep.studies
    runs = [r for s in studies for r in s.runs]
    todo = [r for r in runs if not (r.dir(runs_root) / "done.yaml").is_file()]
    skipped = [r.run_id for r in runs if r not in todo]
    costs = {r.run_id: estimate_seconds(r.experiment()) for r in todo}
    todo.sort(key=lambda r: -costs[r.run_id])  # longest first: the pool's tail is short runs
    jobs = pool_size(jobs, len(todo))
    runs_root.mkdir(parents=True, exist_ok=True)
    (runs_root / "sweep.yaml").write_text(yaml.safe_dump(
        {"name": sweep.name, "source": str(sweep.path) if sweep.path else None,
         "studies": [s.name for s in studies]}, sort_keys=False))
    if not quiet:
        print(f"[sweep {sweep.name}] {len(runs)} runs in {len(studies)} studies: {len(skipped)} already done, "
              f"{len(todo)} to run on {jobs} processes (estimated {format_duration(sum(costs.values()) / jobs)} "
              f"on an idle machine); runs root {runs_root}", file=stream, flush=True)
    started = time.monotonic()
    executed, failed = [], {}

    def finished(outcome: TaskOutcome) -> str:
        run_id = outcome.task[0].run_id
        if outcome.error is None:
            executed.append(run_id)
            done = outcome.result
            final = done["final_eval_return"]
            final_text = "n/a (no evaluation finished)" if final is None else f"{final:.2f}"
            return f"done {run_id} (final eval return {final_text}, {done['wall_time_s']:.0f} s)"
        failed[run_id] = outcome.error
        if not quiet:
            print(f"[sweep {sweep.name}] run {run_id} failed:\n{outcome.error}", file=stream, flush=True)
        return f"FAILED {run_id}"

    # interrupted: the pool is terminated, unfinished runs have no done.yaml and rerun next time
    wall_started = time.time()

    def env_steps_of(task: tuple[RunSpec, str]) -> tuple[int, int]:
        spec, run_dir = task
        total = spec.experiment().run.total_env_steps
        return min(total, last_env_steps(Path(run_dir) / "episodes.csv", wall_started)), total

    run_in_pool(_pool_task, [(r, str(r.dir(runs_root))) for r in todo], jobs=jobs, label=f"sweep {sweep.name}",
                costs=[costs[r.run_id] for r in todo], on_done=finished, quiet=quiet, stream=stream,
                progress_of=env_steps_of, unit="env steps")
    return SweepResult(executed, skipped, failed, time.monotonic() - started)
