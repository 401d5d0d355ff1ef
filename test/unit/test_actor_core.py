"""ActorCore without ROS: sequenced batches, truncation flags, interventions, weights checks,
e-stop latching, the end of a run."""
import numpy as np
import pytest

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.actor_core import WeightsRejected
from kuavo_rl.config import config_from_dict
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.protocol import InterventionInput, StepObservation


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
