"""LearnerCore without ROS: exactly-once ingest, validation, shaped episode returns, and
checkpoint resume to identical training."""
import numpy as np
import pytest
import torch

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.learner_core import LearnerCore
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
