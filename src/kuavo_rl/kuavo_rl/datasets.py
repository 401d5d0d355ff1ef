"""Demonstrations as LeRobotDatasets: lerobot 0.4.4's own `LeRobotDataset` class and v3.0 format,
written to and read from a local root (nothing goes to a hub).

One frame per transition, with lerobot's names where lerobot has one:

    observation.state                   (obs_dim,) float32, one name per index (the env's)
    action                              (act_dim,) float32 in [-1, 1], one name per index
    next.observation.state              (obs_dim,) the observation the action led to (a time-limit
                                        truncation bootstraps from it, so it is stored, not inferred)
    next.reward                         (1,) the env's raw reward
    next.reward_terms                   (T,) the env's reward terms, named: the learner shapes rewards
                                        from these, so a dataset serves any reward configuration
    next.done                           (1,) bool, the episode ended here (terminated or truncated)
    next.terminated                     (1,) bool, ended by the task (no bootstrapping)
    next.success, next.failure          (1,) bool, the episode's label, on its last frame
    complementary_info.is_intervention  (1,) float32, 1 where a human chose the action

Episode metadata beyond lerobot's (source, label, return) is in meta/kuavo_rl.json.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kuavo_rl.config import ConfigError
from kuavo_rl.protocol import TransitionArrays

STATE, ACTION, NEXT_STATE = "observation.state", "action", "next.observation.state"
REWARD, REWARD_TERMS, DONE, TERMINATED = "next.reward", "next.reward_terms", "next.done", "next.terminated"
SUCCESS, FAILURE, INTERVENTION = "next.success", "next.failure", "complementary_info.is_intervention"
METADATA_FILE = "meta/kuavo_rl.json"
LABELS = ("success", "failure", "none")


class DatasetError(ConfigError):
    """A dataset that cannot be used here: missing, or its fields do not fit the env's spaces."""


@dataclass(frozen=True)
class DatasetLayout:
    """The names behind a dataset's vectors: they must match the env's for it to be used."""
    observation_names: tuple[str, ...]
    action_names: tuple[str, ...]
    reward_term_names: tuple[str, ...]

    def features(self) -> dict:
        def vector(names):
            return {"dtype": "float32", "shape": (len(names),), "names": list(names)}

        def scalar(dtype):
            return {"dtype": dtype, "shape": (1,), "names": None}

        return {STATE: vector(self.observation_names), ACTION: vector(self.action_names),
                NEXT_STATE: vector(self.observation_names), REWARD: scalar("float32"),
                REWARD_TERMS: vector(self.reward_term_names), DONE: scalar("bool"), TERMINATED: scalar("bool"),
                SUCCESS: scalar("bool"), FAILURE: scalar("bool"), INTERVENTION: scalar("float32")}


def _drop_codec_warning(record) -> bool:
    return "torchcodec" not in str(record.msg)  # we store no video


def dataset_layout(env) -> DatasetLayout:
    """The names a dataset of the env configured by `env` (an EnvConfig) carries, and must carry to
    be loaded for it."""
    from kuavo_rl.envs import action_names, env_spec, observation_names
    return DatasetLayout(tuple(observation_names(env)), tuple(action_names(env)), env_spec(env).reward_term_names)


def quiet_lerobot() -> None:
    """lerobot's dataset code prints a progress bar per episode, a codec warning and a warning per
    bool field's statistics; a recording has its own progress line."""
    import logging
    import warnings

    import datasets
    datasets.disable_progress_bars()
    logging.getLogger().addFilter(_drop_codec_warning)
    warnings.filterwarnings("ignore", message="Converting input from bool", category=RuntimeWarning)


def episode_label(reward_term_names: tuple[str, ...], last_terms: np.ndarray) -> str:
    """success / failure from the env's (or the operator's) success and failure terms on the last
    step; none when the episode ran out of time or the env has no such terms."""
    for label in ("success", "failure"):
        if label in reward_term_names and last_terms[reward_term_names.index(label)] > 0:
            return label
    return "none"


@dataclass
class EpisodeSummary:
    index: int
    source: str
    label: str
    length: int
    raw_return: float
    interventions: int
    extra: dict = field(default_factory=dict)


class DatasetRecorder:
    """Writes whole episodes of transitions to a new local LeRobotDataset."""

    def __init__(self, root: str | Path, layout: DatasetLayout, fps: int, task: str, env: dict,
                 robot_type: str | None = None, overwrite: bool = False):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        quiet_lerobot()
        self.root = Path(root)
        if self.root.exists():
            if not overwrite:
                raise DatasetError(f"{self.root} already exists; choose another --out or pass --overwrite")
            shutil.rmtree(self.root)
        self.layout, self.task = layout, task
        self.metadata = {"format": 1, "env": env, "observation_names": list(layout.observation_names),
                         "action_names": list(layout.action_names),
                         "reward_term_names": list(layout.reward_term_names), "episodes": []}
        self.dataset = LeRobotDataset.create(f"local/{self.root.name}", fps=fps, features=layout.features(),
                                             root=self.root, robot_type=robot_type, use_videos=False)

    def add_episode(self, t: TransitionArrays, truncated_at_end: bool, source: str, extra: dict | None = None) -> str:
        """One episode's transitions in order; returns its label (from its last step's terms)."""
        n = len(t)
        if n == 0:
            raise DatasetError("an episode needs at least one transition")
        label = episode_label(self.layout.reward_term_names, t.reward_terms[-1])
        ended = np.zeros(n, bool)
        ended[-1] = bool(t.terminated[-1]) or truncated_at_end
        for i in range(n):
            last = i == n - 1
            self.dataset.add_frame({
                STATE: t.observations[i], ACTION: t.actions[i], NEXT_STATE: t.next_observations[i],
                REWARD: np.array([t.raw_rewards[i]], np.float32), REWARD_TERMS: t.reward_terms[i],
                DONE: np.array([ended[i]]), TERMINATED: np.array([bool(t.terminated[i])]),
                SUCCESS: np.array([last and label == "success"]), FAILURE: np.array([last and label == "failure"]),
                INTERVENTION: np.array([float(t.intervention[i])], np.float32), "task": self.task})
        self.dataset.save_episode()
        summary = EpisodeSummary(len(self.metadata["episodes"]), source, label, n, float(t.raw_rewards.sum()),
                                 int(t.intervention.sum()), extra or {})
        self.metadata["episodes"].append(vars(summary))
        self._write_metadata()
        return label

    def _write_metadata(self) -> None:
        path = self.root / METADATA_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.metadata, indent=1))
        os.replace(temporary, path)

    def close(self) -> None:
        self.dataset.finalize()  # writes the parquet footers: without it the dataset does not load


@dataclass
class Demonstrations:
    transitions: TransitionArrays
    episodes: int
    labels: dict[str, int]  # label -> episodes
    sources: list[str]


def _check_names(root: Path, key: str, feature: dict, expected: tuple[str, ...], what: str) -> None:
    shape = tuple(feature.get("shape", ()))
    if shape != (len(expected),):
        raise DatasetError(f"{root}: field '{key}' has shape {shape}, the env's {what} has ({len(expected)},)")
    names = feature.get("names")
    if names is not None and list(names) != list(expected):
        differing = next(i for i, (a, b) in enumerate(zip(names, expected)) if a != b)
        raise DatasetError(f"{root}: field '{key}' index {differing} is '{names[differing]}', the env's {what} "
                           f"has '{expected[differing]}' there (recorded with another observation layout?)")


def load_dataset(root: str | Path, layout: DatasetLayout, max_episodes: int = 0) -> Demonstrations:
    """A local dataset's transitions, checked field by field against the env's layout."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    quiet_lerobot()
    root = Path(root)
    if not (root / "meta" / "info.json").is_file():
        raise DatasetError(f"{root}: not a LeRobotDataset (no meta/info.json); record one with kuavo-rl record")
    features = json.loads((root / "meta" / "info.json").read_text()).get("features", {})
    for key in layout.features():
        if key not in features:
            raise DatasetError(f"{root}: field '{key}' is missing (this stack's recordings have it)")
    expected = {STATE: (layout.observation_names, "observation"), NEXT_STATE: (layout.observation_names, "observation"),
                ACTION: (layout.action_names, "action"), REWARD_TERMS: (layout.reward_term_names, "reward terms")}
    for key, (names, what) in expected.items():
        _check_names(root, key, features[key], names, what)
    dataset = LeRobotDataset(f"local/{root.name}", root=root)
    frames = dataset.hf_dataset.with_format("numpy")
    episode_index = np.asarray(frames["episode_index"])
    keep = np.ones(len(episode_index), bool) if max_episodes <= 0 else episode_index < max_episodes

    def column(key, dtype):
        return np.stack(frames[key]).astype(dtype)[keep]

    transitions = TransitionArrays(
        observations=column(STATE, np.float32), actions=column(ACTION, np.float32),
        reward_terms=column(REWARD_TERMS, np.float32), raw_rewards=column(REWARD, np.float32).reshape(-1),
        next_observations=column(NEXT_STATE, np.float32), terminated=column(TERMINATED, bool).reshape(-1),
        intervention=column(INTERVENTION, np.float32).reshape(-1) > 0.5,
        sequences=np.asarray(frames["index"], np.uint64)[keep])
    _check_values(root, transitions)
    episodes = sorted(set(episode_index[keep].tolist()))
    success, failure = column(SUCCESS, bool).reshape(-1), column(FAILURE, bool).reshape(-1)
    labels = {"success": int(success.sum()), "failure": int(failure.sum())}
    labels["none"] = len(episodes) - labels["success"] - labels["failure"]
    metadata_file = root / METADATA_FILE
    sources = sorted({e["source"] for e in json.loads(metadata_file.read_text())["episodes"]}) \
        if metadata_file.is_file() else ["unknown"]
    return Demonstrations(transitions, len(episodes), labels, sources)


def _check_values(root: Path, t: TransitionArrays) -> None:
    for key, values in ((STATE, t.observations), (NEXT_STATE, t.next_observations), (ACTION, t.actions),
                        (REWARD_TERMS, t.reward_terms), (REWARD, t.raw_rewards)):
        if not np.all(np.isfinite(values)):
            raise DatasetError(f"{root}: field '{key}' contains NaN/inf")
    largest = float(np.max(np.abs(t.actions))) if len(t) else 0.0
    if largest > 1.0 + 1e-4:
        raise DatasetError(f"{root}: field '{ACTION}' reaches {largest:.3g}; actions must be in [-1, 1] "
                           f"(the env's normalised action box)")


def load_demonstrations(roots: list[str], layout: DatasetLayout, max_episodes: int = 0) -> Demonstrations:
    """Several datasets as one (in the order given)."""
    parts = [load_dataset(root, layout, max_episodes) for root in roots]
    labels = {label: sum(p.labels[label] for p in parts) for label in LABELS}
    return Demonstrations(TransitionArrays.concatenate([p.transitions for p in parts]),
                          sum(p.episodes for p in parts), labels, sorted({s for p in parts for s in p.sources}))


TRAINING_RECORD_MODES = ("takeovers", "episodes", "none")
_ROW_FIELDS = ("observations", "actions", "reward_terms", "raw_rewards", "next_observations", "terminated",
               "truncated", "intervention", "episode_ids", "step_indices")


class TrainingRecording:
    """What the learner received that a user wants as a dataset: the takeover segments (contiguous
    human steps of one episode), or whole training episodes. Kept in the learner's checkpoint (so a
    crash loses none of it) and written as a LeRobotDataset when the learner closes."""

    def __init__(self, mode: str):
        if mode not in TRAINING_RECORD_MODES:
            raise ValueError(f"recording mode must be one of {TRAINING_RECORD_MODES}, got {mode!r}")
        self.mode = mode
        self.parts: list[dict[str, np.ndarray]] = []  # per ingested batch; `sender` kept per part
        self.senders: list[str] = []

    def add(self, sender: str, batch, rows: np.ndarray) -> None:
        """`rows` (bool mask) of a validated StepBatch: its training transitions."""
        keep = rows & batch.intervention if self.mode == "takeovers" else rows
        if self.mode == "none" or not keep.any():
            return
        self.parts.append({name: np.asarray(getattr(batch, name))[keep] for name in _ROW_FIELDS})
        self.senders.append(sender)

    def __len__(self) -> int:
        return sum(len(p["raw_rewards"]) for p in self.parts)

    def segments(self) -> list[tuple[TransitionArrays, bool]]:
        """(transitions, ended by the time limit) per dataset episode, in arrival order of episodes:
        a takeover segment, or a whole (finished) episode."""
        groups: dict[tuple[str, int], list[dict]] = {}
        for sender, part in zip(self.senders, self.parts):
            for episode in np.unique(part["episode_ids"]):
                mask = part["episode_ids"] == episode
                groups.setdefault((sender, int(episode)), []).append({k: v[mask] for k, v in part.items()})
        out = []
        for pieces in groups.values():
            rows = {k: np.concatenate([p[k] for p in pieces]) for k in _ROW_FIELDS}
            order = np.argsort(rows["step_indices"], kind="stable")
            rows = {k: v[order] for k, v in rows.items()}
            time_limit = rows["truncated"] & ~rows["terminated"]
            if self.mode == "episodes":
                if rows["terminated"][-1] or rows["truncated"][-1]:  # finished episodes only
                    out.append((_transitions(rows, slice(None)), bool(time_limit[-1])))
                continue
            breaks = np.flatnonzero(np.diff(rows["step_indices"].astype(np.int64)) != 1) + 1
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(order)]):
                out.append((_transitions(rows, slice(start, stop)), bool(time_limit[stop - 1])))
        return out

    def write(self, root: str | Path, layout: DatasetLayout, fps: int, task: str, env: dict) -> int:
        """Write every segment to a new dataset at `root` (replacing an older writing); returns how many."""
        segments = self.segments()
        if not segments:
            return 0
        recorder = DatasetRecorder(root, layout, fps, task, env, overwrite=True)
        try:
            for transitions, truncated in segments:
                recorder.add_episode(transitions, truncated, "takeover" if self.mode == "takeovers" else "training")
        finally:
            recorder.close()
        return len(segments)

    def state_dict(self) -> dict:
        """One array per field (a checkpoint stores few large arrays well, not many small ones)."""
        names = sorted(set(self.senders))
        if not self.parts:
            return {"senders": [], "sender_index": np.zeros(0, np.int64), "rows": {}}
        index = np.concatenate([np.full(len(part["raw_rewards"]), names.index(sender))
                                for sender, part in zip(self.senders, self.parts)])
        return {"senders": names, "sender_index": index,
                "rows": {k: np.concatenate([p[k] for p in self.parts]) for k in _ROW_FIELDS}}

    def load_state_dict(self, state: dict) -> None:
        index, rows = state["sender_index"], state["rows"]
        self.senders = [s for i, s in enumerate(state["senders"]) if np.any(index == i)]
        self.parts = [{k: v[index == state["senders"].index(s)] for k, v in rows.items()} for s in self.senders]


def _transitions(rows: dict[str, np.ndarray], index) -> TransitionArrays:
    n = len(rows["raw_rewards"][index])
    return TransitionArrays(
        observations=rows["observations"][index], actions=rows["actions"][index],
        reward_terms=rows["reward_terms"][index], raw_rewards=rows["raw_rewards"][index],
        next_observations=rows["next_observations"][index], terminated=rows["terminated"][index],
        intervention=rows["intervention"][index], sequences=np.arange(n, dtype=np.uint64))
