"""Run logs: CSV files (episodes, updates) plus TensorBoard event files, appended across resumes."""
from __future__ import annotations

import csv
from pathlib import Path

EPISODE_FIELDS = ("env_steps", "episode_id", "return", "raw_return", "length", "evaluation",
                  "interventions", "intervention_rate")
UPDATE_FIELDS = ("updates", "env_steps", "critic_loss", "actor_loss", "temperature", "temperature_loss",
                 "q_mean", "offline_share", "bc_loss", "bc_weight")


def write_spaces(run_dir: str | Path, observation_names: list[str], action_dim: int,
                 reward_term_names: tuple[str, ...]) -> Path:
    """<run_dir>/spaces.yaml: what each observation index is, the action size and the reward terms (so
    a log, a plot or a dataset of this run can be read without the code)."""
    import yaml
    path = Path(run_dir) / "spaces.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"observation": list(observation_names), "action_dim": int(action_dim),
                                    "reward_terms": list(reward_term_names)}, sort_keys=False))
    return path


class RunLog:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._files = {}
        self._writers = {}
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def _writer(self, name: str, fieldnames) -> csv.DictWriter:
        if name not in self._writers:
            path = self.run_dir / f"{name}.csv"
            new = not path.exists() or path.stat().st_size == 0
            handle = path.open("a", newline="")
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
            if new:
                writer.writeheader()
            self._files[name], self._writers[name] = handle, writer
        return self._writers[name]

    def episode(self, record) -> None:
        row = {"env_steps": record.env_steps, "episode_id": record.episode_id, "return": record.episode_return,
               "raw_return": record.raw_return, "length": record.length, "evaluation": int(record.evaluation),
               "interventions": record.interventions, "intervention_rate": record.intervention_rate}
        self._writer("episodes", EPISODE_FIELDS).writerow(row)
        self._files["episodes"].flush()
        if self.tb is not None:
            tag = "eval" if record.evaluation else "train"
            self.tb.add_scalar(f"{tag}/episode_return", record.episode_return, record.env_steps)
            self.tb.add_scalar(f"{tag}/intervention_rate", record.intervention_rate, record.env_steps)

    def update(self, updates: int, env_steps: int, metrics: dict[str, float], offline_share: float) -> None:
        row = {"updates": updates, "env_steps": env_steps, "offline_share": offline_share, **metrics}
        self._writer("updates", UPDATE_FIELDS).writerow(row)
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(f"learner/{key}", value, updates)
            self.tb.add_scalar("learner/offline_share", offline_share, updates)

    def flush(self) -> None:
        for handle in self._files.values():
            handle.flush()
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        self.flush()
        for handle in self._files.values():
            handle.close()
        if self.tb is not None:
            self.tb.close()
        self._files, self._writers = {}, {}


def read_rows(path: str | Path) -> list[dict[str, float]]:
    path = Path(path)
    if not path.exists():
        return []
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]


def episode_curve(run_dir: str | Path, evaluation: bool) -> tuple[list[float], list[float]]:
    """(env_steps, returns) of the evaluation or training episodes of a run."""
    rows = [r for r in read_rows(Path(run_dir) / "episodes.csv") if bool(r["evaluation"]) == evaluation]
    return [r["env_steps"] for r in rows], [r["return"] for r in rows]


def drop_rows_after(path: str | Path, column: str, last_kept: float) -> int:
    """After a resume, forget rows logged past the checkpoint (they will be logged again)."""
    path = Path(path)
    if not path.exists():
        return 0
    with path.open() as handle:
        reader = csv.DictReader(handle)
        fieldnames, rows = reader.fieldnames, list(reader)
    kept = [r for r in rows if float(r[column]) <= last_kept]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(kept)
    return len(rows) - len(kept)
