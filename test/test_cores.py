"""ActorCore and LearnerCore without ROS: exactly-once ingest, validation, weights, interventions,
truncation handling, and checkpoint resume."""
import numpy as np
import pytest
import torch

from kuavo_rl.actor_core import ActorCore, WeightsRejected
from kuavo_rl.algos.base import TrainBatch, make_actor_policy
from kuavo_rl.config import config_from_dict
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.protocol import BatchError, InterventionInput, StepObservation

TERMS = ("action_error_sq_mean", "action_error_norm")


def small_cfg(**algo):
    return config_from_dict({"env": {"action_dim": 2, "episode_steps": 5},
                             "algo": {"batch_size": 8, "learning_starts": 4, "hidden_dims": [16, 16], **algo},
                             "run": {"total_env_steps": 20}, "actor": {"batch_transitions": 4, "eval_every_episodes": 0}})


def make_actor(cfg, clock=lambda: 0.0):
    return ActorCore(cfg, 3, 2, TERMS, make_actor_policy(cfg.algo, 3, 2, 0), clock=clock)


def run_episode(actor: ActorCore, episode_id: int, length: int = 5, truncate=True):
    obs = StepObservation(episode_id, 0, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    decisions = []
    for step in range(1, length + 2):
        decision = actor.on_step(obs)
        decisions.append(decision)
        if decision is None or decision.reset:
            break
        obs = StepObservation(episode_id, step, np.full(3, step, np.float32), np.array([0.1, 0.2], np.float32),
                              -0.1, False, truncate and step == length)
    return decisions


def test_actor_batches_transitions_with_sequences_and_truncation_flags():
    actor = make_actor(small_cfg())
    decisions = run_episode(actor, 0)
    assert decisions[-1].reset and len(decisions) == 6
    batches = actor.batches_to_send(resend_after_s=0.0)
    rows = sum(b.count for b in batches)
    assert rows == 5 and [b.sequence for b in batches] == [0]  # an episode end flushes
    last = batches[-1]
    assert last.truncated[-1] and not last.terminated[-1]  # a time limit, so the learner bootstraps
    assert np.concatenate([b.transition_sequences for b in batches]).tolist() == [0, 1, 2, 3, 4]
    assert actor.batches_to_send(resend_after_s=10.0) == []  # not resent before the timeout


def test_fresh_intervention_replaces_the_policy_action_and_is_flagged():
    now = [0.0]
    actor = make_actor(small_cfg(), clock=lambda: now[0])
    human = np.array([0.7, -0.3], np.float32)
    actor.on_intervention(InterventionInput(True, human, received_at=0.0))
    obs = StepObservation(0, 0, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    decision = actor.on_step(obs)
    assert decision.intervention and np.allclose(decision.action, human)
    now[0] = 10.0  # stale: the policy acts again
    obs1 = StepObservation(0, 1, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    assert not actor.on_step(obs1).intervention
    with pytest.raises(ValueError, match="dims"):
        actor.on_intervention(InterventionInput(True, np.zeros(5, np.float32), 0.0))
    with pytest.raises(ValueError, match="NaN"):
        actor.on_intervention(InterventionInput(True, np.array([np.nan, 0], np.float32), 0.0))


def test_weights_checks_checksum_version_and_backend():
    cfg = small_cfg()
    learner = LearnerCore(cfg, 3, 2, TERMS)
    actor = make_actor(cfg)
    version, data, checksum = learner.export_weights()
    with pytest.raises(WeightsRejected, match="checksum"):
        actor.on_weights(version, 0, "lerobot_sac", data[:-1] + bytes([data[-1] ^ 1]), checksum, "run-a")
    with pytest.raises(WeightsRejected, match="backend"):
        actor.on_weights(version, 0, "sb3_sac", data, checksum, "run-a")
    actor.on_weights(version, 0, "lerobot_sac", data, checksum, "run-a")
    assert actor.policy_version == version
    with pytest.raises(WeightsRejected, match="not newer"):
        actor.on_weights(version, 0, "lerobot_sac", data, checksum, "run-a")
    actor.on_weights(version, 0, "lerobot_sac", data, checksum, "run-b")  # a restarted learner is accepted


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


@pytest.mark.parametrize("backend", ["lerobot_sac", "sb3_sac"])
def test_backend_runs_one_update_step(backend):
    from kuavo_rl.algos.base import make_backend
    cfg = small_cfg(backend=backend)
    model = make_backend(cfg.algo, 3, 2, 0)
    before = [p.clone() for p in model.actor_state_dict().values()]
    n = 8
    batch = TrainBatch(torch.randn(n, 3), torch.rand(n, 2) * 2 - 1, torch.randn(n), torch.randn(n, 3), torch.zeros(n))
    metrics = model.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())
    assert {"critic_loss", "actor_loss", "temperature"} <= set(metrics)
    after = list(model.actor_state_dict().values())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


def test_estop_latches_in_the_actor_until_an_explicit_reset():
    now = [0.0]
    actor = make_actor(small_cfg(), clock=lambda: now[0])
    obs = lambda step: StepObservation(0, step, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    actor.on_intervention(InterventionInput(False, np.zeros(2, np.float32), received_at=0.0, estop=True))
    first = actor.on_step(obs(0))
    assert np.all(first.action == 0) and not first.intervention
    now[0] = 100.0  # the VR link went silent: still stopped
    assert np.all(actor.on_step(obs(1)).action == 0)
    actor.on_intervention(InterventionInput(False, np.zeros(2, np.float32), received_at=100.0, estop=False))
    assert actor.estopped is False


def test_finished_actor_ignores_a_resent_final_observation():
    cfg = config_from_dict({"env": {"action_dim": 2, "episode_steps": 5}, "algo": {"hidden_dims": [16, 16]},
                            "run": {"total_env_steps": 5},
                            "actor": {"eval_every_episodes": 0, "final_eval_episodes": 0}})
    actor = make_actor(cfg)
    decisions = run_episode(actor, 0)
    assert decisions[-1] is None and actor.finished
    last = StepObservation(0, 5, np.full(3, 5, np.float32), np.array([0.1, 0.2], np.float32), -0.1, False, True)
    assert actor.on_step(last) is None  # no reset: the run is over
