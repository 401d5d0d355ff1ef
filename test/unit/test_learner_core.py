"""LearnerCore without ROS: exactly-once ingest, validation, shaped episode returns, and
checkpoint resume to identical training."""
import numpy as np
import pytest
import torch

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.learner_core import LearnerCore, TrainingDiverged
from kuavo_rl.protocol import BatchError


def test_learner_ingests_each_batch_once_and_rejects_malformed_ones():
    cfg = small_cfg()
    actor, learner = make_actor(cfg), LearnerCore(cfg, 3, 2, TERMS)
    run_episode(actor, 0)
    batches = actor.batches_to_send(0.0)
    for batch in batches + batches:
        learner.ingest(batch)
    assert learner.env_steps == 5 and len(learner.buffers.online) == 5
    bad = batches[0].select(slice(0, 2))
    bad.observations = bad.observations.copy()
    bad.observations[0, 0] = np.nan
    with pytest.raises(BatchError, match="NaN"):
        learner.ingest(bad)
    wrong_dim = batches[0].select(slice(0, 2))
    wrong_dim.actions = np.zeros((2, 3), np.float32)
    with pytest.raises(BatchError, match="shape"):
        learner.ingest(wrong_dim)
    assert learner.env_steps == 5


def test_episode_returns_are_shaped_and_span_batches():
    cfg = small_cfg()
    actor, learner = make_actor(cfg), LearnerCore(cfg, 3, 2, TERMS)
    run_episode(actor, 0)
    records = [r for b in actor.batches_to_send(0.0) for r in learner.ingest(b).episodes]
    assert len(records) == 1 and records[0].length == 5
    assert records[0].episode_return == pytest.approx(-0.5)  # mse term 0.1 per step, 5 steps


@pytest.mark.parametrize("backend", ["lerobot_sac", "sb3_sac"])
def test_resume_restores_identical_training(backend, tmp_path):
    from kuavo_rl.checkpoint import load_latest, save_checkpoint
    cfg = small_cfg(backend=backend)
    actor, learner = make_actor(cfg), LearnerCore(cfg, 3, 2, TERMS)
    for episode in range(3):
        run_episode(actor, episode)
    for batch in actor.batches_to_send(0.0):
        learner.ingest(batch)
    for _ in range(learner.updates_due()):
        learner.train_step()
    assert learner.updates > 0
    save_checkpoint(learner.state_dict(), tmp_path)
    resumed = LearnerCore(cfg, 3, 2, TERMS, seed=999)  # a different init: everything must come from the file
    resumed.load_state_dict(load_latest(tmp_path))
    for a, b in zip(learner.backend.actor_state_dict().values(), resumed.backend.actor_state_dict().values()):
        assert torch.equal(a, b)
    assert (resumed.env_steps, resumed.updates) == (learner.env_steps, learner.updates)
    rng = torch.get_rng_state()  # both cores draw from torch's global generator: give each the same draw
    m1 = learner.train_step()
    torch.set_rng_state(rng)
    m2 = resumed.train_step()
    assert m1["critic_loss"] == pytest.approx(m2["critic_loss"], rel=1e-5)


def _episode_batches(cfg, actor=None, episodes=1):
    actor = actor or make_actor(cfg)
    for episode in range(episodes):
        run_episode(actor, episode)
    return actor.batches_to_send(0.0)


def test_a_restarted_actor_is_a_new_sender_whose_batches_are_all_kept():
    cfg = small_cfg()
    learner = LearnerCore(cfg, 3, 2, TERMS)
    first, restarted = make_actor(cfg), make_actor(cfg)  # same actor_id, new process: sequences from 0 again
    old = _episode_batches(cfg, first, episodes=2)
    new = _episode_batches(cfg, restarted)
    assert [b.sequence for b in old] == [0, 1] and [b.sequence for b in new] == [0]
    assert new[0].actor_incarnation != old[0].actor_incarnation
    for batch in old + new:
        assert not learner.ingest(batch).duplicate
    assert learner.env_steps == 15 and len(learner.buffers.online) == 15
    assert learner.earlier_env_steps("actor0", restarted.incarnation) == 10
    assert learner.earlier_env_steps("actor0", first.incarnation) == 5
    assert learner.ingest(new[0]).duplicate  # a resend of the same process is still a duplicate


def test_oversized_batches_and_huge_or_infinite_derived_values_are_refused():
    cfg = small_cfg()
    cfg.learner.max_batch_transitions = 4
    learner = LearnerCore(cfg, 3, 2, TERMS)
    (batch,) = _episode_batches(cfg)  # 5 transitions
    with pytest.raises(BatchError, match="max_batch_transitions"):
        learner.ingest(batch)
    cfg.learner.max_batch_transitions = 100
    huge = batch.select(slice(0, 5))
    huge.observations = np.full_like(huge.observations, 1e30)  # finite, but a critic would turn it into NaN
    with pytest.raises(BatchError, match="max_abs_value"):
        learner.ingest(huge)
    inf_shaping = small_cfg(backend="sb3_sac")
    inf_shaping.reward.scale, inf_shaping.reward.shift = 1e38, 10.0  # finite in the YAML, inf in float32
    with pytest.raises(BatchError, match="reward shaping makes 5 of 5 rewards NaN/inf"):
        LearnerCore(inf_shaping, 3, 2, TERMS).ingest(batch)
    assert learner.env_steps == 0 and len(learner.buffers.online) == 0


def test_a_diverged_critic_stops_training_and_cannot_be_checkpointed_or_published():
    cfg = small_cfg(backend="sb3_sac")
    cfg.learner.max_abs_value = 1e38  # let a huge observation through, as the old learner did ...
    cfg.algo.observation_normalization = "none"  # ... and feed it to the networks unnormalised
    actor = make_actor(cfg)
    learner = LearnerCore(cfg, 3, 2, TERMS)
    for batch in _episode_batches(cfg, actor, episodes=2):
        batch.observations = np.full_like(batch.observations, 3e37)
        batch.next_observations = np.full_like(batch.next_observations, 3e37)
        learner.ingest(batch)
    with pytest.raises(TrainingDiverged, match="critic_loss|non-finite"):
        for _ in range(learner.updates_due()):
            learner.train_step()
    finite_updates = learner.updates
    with pytest.raises(TrainingDiverged):
        for _ in range(5):  # whatever the losses say, the parameters are no longer finite
            learner.train_step()
    assert learner.updates == finite_updates
    with pytest.raises(TrainingDiverged, match="checkpoint"):
        learner.state_dict()
    with pytest.raises(TrainingDiverged, match="policy weights"):
        learner.export_weights()


def test_a_changed_reward_configuration_applies_to_data_already_in_the_buffers():
    cfg = small_cfg(backend="sb3_sac")
    learner = LearnerCore(cfg, 3, 2, TERMS)
    for batch in _episode_batches(cfg, episodes=2):
        learner.ingest(batch)
    state = learner.state_dict()
    changed = small_cfg(backend="sb3_sac")
    changed.reward.scale, changed.reward.shift = 10.0, 0.05
    resumed = LearnerCore(changed, 3, 2, TERMS)
    resumed.load_state_dict(state)
    # Every stored step has an MSE term of 0.1: -0.1 before, 10 * (-0.1 + 0.05) = -0.5 after the change.
    assert torch.allclose(learner.sample_batch().rewards, torch.tensor(-0.1))
    assert torch.allclose(resumed.sample_batch().rewards, torch.tensor(-0.5))
