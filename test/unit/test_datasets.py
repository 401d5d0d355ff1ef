"""Recorded demonstrations are lerobot's own LeRobotDataset (read back by lerobot in another process
with identical values), carry named fields, and are refused, with the field named, where they do
not fit the env."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from helpers.pipeline import REPO
from kuavo_rl.config import ConfigError, load_config
from kuavo_rl.datasets import DatasetError, DatasetLayout, DatasetRecorder, dataset_layout, load_dataset
from kuavo_rl.protocol import TransitionArrays

LAYOUT = DatasetLayout(("o0", "o1", "o2"), ("a0", "a1"), ("hand_sq", "success", "failure"))

# Reads a dataset with lerobot's own class (nothing of ours imported) and dumps every frame.
LEROBOT_READER = """
import sys, numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset
root, out = sys.argv[1], sys.argv[2]
dataset = LeRobotDataset("local/" + root.rstrip("/").split("/")[-1], root=root)
frames = [dataset[i] for i in range(len(dataset))]
keys = [k for k in frames[0] if k != "task"]
np.savez(out, tasks=np.array([f["task"] for f in frames]),
         **{k: np.stack([np.asarray(f[k]) for f in frames]) for k in keys})
"""


def _episode(rng: np.random.Generator, n: int, success: bool) -> TransitionArrays:
    terms = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    terms[:, 1:] = 0.0
    terms[-1, 1] = float(success)
    terminated = np.zeros(n, bool)
    terminated[-1] = success
    return TransitionArrays(
        observations=rng.normal(size=(n, 3)).astype(np.float32), actions=rng.uniform(-1, 1, (n, 2)).astype(np.float32),
        reward_terms=terms, raw_rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, 3)).astype(np.float32), terminated=terminated,
        intervention=rng.uniform(size=n) < 0.5, sequences=np.arange(n, dtype=np.uint64))


def _write(root, episodes) -> None:
    recorder = DatasetRecorder(root, LAYOUT, fps=10, task="test task", env={"name": "test"})
    for episode, success in episodes:
        recorder.add_episode(episode, truncated_at_end=not success, source="test")
    recorder.close()


def test_a_recorded_dataset_reads_back_identically_with_lerobots_own_class_in_another_process(tmp_path):
    rng = np.random.default_rng(0)
    episodes = [(_episode(rng, 7, success=True), True), (_episode(rng, 5, success=False), False)]
    _write(tmp_path / "demo", episodes)
    dump = tmp_path / "frames.npz"
    completed = subprocess.run([sys.executable, "-c", LEROBOT_READER, str(tmp_path / "demo"), str(dump)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    frames = np.load(dump)
    written = TransitionArrays.concatenate([e for e, _ in episodes])
    np.testing.assert_array_equal(frames["observation.state"], written.observations)
    np.testing.assert_array_equal(frames["action"], written.actions)
    np.testing.assert_array_equal(frames["next.observation.state"], written.next_observations)
    np.testing.assert_array_equal(frames["next.reward_terms"], written.reward_terms)
    np.testing.assert_array_equal(frames["next.reward"].reshape(-1), written.raw_rewards)
    np.testing.assert_array_equal(frames["next.terminated"].reshape(-1), written.terminated)
    np.testing.assert_array_equal(frames["complementary_info.is_intervention"].reshape(-1),
                                  written.intervention.astype(np.float32))
    np.testing.assert_array_equal(frames["episode_index"], [0] * 7 + [1] * 5)
    done = np.zeros(12, bool)
    done[[6, 11]] = True  # the first ends by success (terminated), the second by its time limit
    np.testing.assert_array_equal(frames["next.done"].reshape(-1), done)
    np.testing.assert_array_equal(frames["next.success"].reshape(-1), np.eye(12, dtype=bool)[6])
    assert not frames["next.failure"].any()
    assert set(frames["tasks"]) == {"test task"}
    info = json.loads((tmp_path / "demo" / "meta" / "info.json").read_text())
    assert info["features"]["observation.state"]["names"] == list(LAYOUT.observation_names)
    assert info["features"]["next.reward_terms"]["names"] == list(LAYOUT.reward_term_names)
    ours = load_dataset(tmp_path / "demo", LAYOUT)  # and our loader reads the same transitions
    np.testing.assert_array_equal(ours.transitions.observations, written.observations)
    np.testing.assert_array_equal(ours.transitions.intervention, written.intervention)
    assert ours.episodes == 2 and ours.labels == {"success": 1, "failure": 0, "none": 1}
    assert load_dataset(tmp_path / "demo", LAYOUT, max_episodes=1).transitions.observations.shape == (7, 3)


@pytest.mark.parametrize("layout, field", [
    (DatasetLayout(("o0", "o1", "o2", "o3"), LAYOUT.action_names, LAYOUT.reward_term_names), "observation.state"),
    (DatasetLayout(LAYOUT.observation_names, ("a0", "a1", "a2"), LAYOUT.reward_term_names), "'action'"),
    (DatasetLayout(LAYOUT.observation_names, LAYOUT.action_names, ("hand_sq", "success")), "next.reward_terms"),
    (DatasetLayout(("o0", "box.x", "o2"), LAYOUT.action_names, LAYOUT.reward_term_names), "index 1 is 'o1'"),
])
def test_a_dataset_that_does_not_fit_the_env_is_refused_with_the_field_named(tmp_path, layout, field):
    _write(tmp_path / "demo", [(_episode(np.random.default_rng(1), 4, True), True)])
    with pytest.raises(DatasetError, match=field):
        load_dataset(tmp_path / "demo", layout)


def test_actions_outside_the_action_box_and_non_datasets_are_refused(tmp_path):
    episode = _episode(np.random.default_rng(2), 4, True)
    episode.actions[2, 1] = 3.0  # e.g. recorded in metres instead of the env's [-1, 1] units
    _write(tmp_path / "demo", [(episode, True)])
    with pytest.raises(DatasetError, match="'action' reaches 3"):
        load_dataset(tmp_path / "demo", LAYOUT)
    with pytest.raises(DatasetError, match="not a LeRobotDataset"):
        load_dataset(tmp_path, LAYOUT)
    with pytest.raises(DatasetError, match="already exists"):
        _write(tmp_path / "demo", [])


def test_the_learner_refuses_to_start_on_demonstrations_of_another_env(tmp_path):
    """A toy dataset recorded at 3 dims given to a 4-dim run: start-up stops with the field named."""
    from kuavo_rl.envs import env_spec
    from kuavo_rl.learner_core import LearnerCore
    from kuavo_rl.record import record
    record(load_config(None, ["env.action_dim=3", "env.episode_steps=5"]), "scripted", 1, tmp_path / "toy3",
           quiet=True)
    cfg = load_config(None, ["env.action_dim=4", f"demos.datasets=[{tmp_path / 'toy3'}]"])
    refusal = "field 'observation.state' has shape \\(4,\\), the env's observation has \\(5,\\)"
    with pytest.raises(ConfigError, match=refusal):
        LearnerCore(cfg, *env_spec(cfg.env))


def test_kuavo_record_cli_records_labelled_scripted_box_lifts_with_named_fields(tmp_path):
    out = tmp_path / "box_lift"
    command = [sys.executable, "-m", "kuavo_rl.cli", "record", "--env", "kuavo_sim", "--episodes", "2",
               "--noise", "0.1", "--out", str(out), "--set", "env.kuavo.link=inprocess"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "[record scripted] 2/2" in completed.stderr and "labels: success 2" in completed.stderr
    cfg = load_config(REPO / "config" / "kuavo_sim_box_lift.yaml")
    demos = load_dataset(out, dataset_layout(cfg.env))
    assert demos.labels["success"] == 2 and demos.sources == ["scripted"]
    assert not demos.transitions.intervention.any()  # a scripted expert is not a human takeover
    features = json.loads((out / "meta" / "info.json").read_text())["features"]
    assert features["action"]["names"] == ["left_dx", "left_dy", "left_dz", "right_dx", "right_dy", "right_dz"]
    assert features["observation.state"]["names"][29:] == ["box_position.x", "box_position.y", "box_position.z"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert again.returncode == 2 and "already exists" in again.stderr  # a recording is never overwritten silently


def test_record_refuses_sources_it_has_no_expert_for():
    from kuavo_rl.record import make_controller
    with pytest.raises(ConfigError, match="no scripted expert for env pick_lift"):
        make_controller(load_config(None, ["env.name=pick_lift", "env.action_dim=4"]), "scripted", 0.1, 0)
    with pytest.raises(ConfigError, match="--source policy needs --policy"):
        make_controller(load_config(None), "policy", 0.1, 0)


def _step_batch(sequence: int, episode: int, steps: range, takeover: set[int], last_step: int):
    from kuavo_rl.protocol import StepBatch
    rows = [{"transition_sequence": 100 * episode + s, "episode_id": episode, "step_index": s,
             "observation": np.full(3, s, np.float32), "action": np.full(2, 0.1 * (s % 10), np.float32),
             "next_observation": np.full(3, s + 1, np.float32), "reward_terms": np.zeros(3, np.float32),
             "raw_reward": 0.0, "terminated": False, "truncated": s == last_step, "intervention": s in takeover,
             "evaluation": False, "policy_version": 0} for s in steps]
    return StepBatch.from_rows("actor0", sequence, 3, 2, LAYOUT.reward_term_names, rows, "inc")


def test_training_recording_keeps_takeover_segments_through_a_checkpoint_and_writes_them(tmp_path):
    from kuavo_rl.datasets import TrainingRecording
    takeover = {2, 3, 4, 7, 8}
    batches = [_step_batch(0, 0, range(1, 6), takeover, 10), _step_batch(1, 0, range(6, 11), takeover, 10),
               _step_batch(2, 1, range(1, 4), {1}, 10)]  # episode 1 still running
    recording = TrainingRecording("takeovers")
    for batch in batches[:2]:
        recording.add(batch.sender, batch, np.ones(batch.count, bool))
    restored = TrainingRecording("takeovers")
    restored.load_state_dict(recording.state_dict())  # what a resumed learner gets from the checkpoint
    restored.add(batches[2].sender, batches[2], np.ones(batches[2].count, bool))
    segments = restored.segments()
    assert [len(t) for t, _ in segments] == [3, 2, 1]
    np.testing.assert_array_equal(segments[0][0].observations[:, 0], [2, 3, 4])
    assert all(t.intervention.all() for t, _ in segments)
    assert restored.write(tmp_path / "takeovers", LAYOUT, 10, "t", {}) == 3
    loaded = load_dataset(tmp_path / "takeovers", LAYOUT)
    assert loaded.episodes == 3 and len(loaded.transitions) == 6 and loaded.sources == ["takeover"]

    episodes = TrainingRecording("episodes")  # whole training episodes: only finished ones
    for batch in batches:
        episodes.add(batch.sender, batch, np.ones(batch.count, bool))
    (episode, truncated), = episodes.segments()
    assert len(episode) == 10 and truncated and episode.intervention.sum() == 5
