"""ActorCore without ROS: sequenced batches, truncation flags, interventions, weights checks,
e-stop latching, the end of a run."""
import numpy as np
import pytest
import torch

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.actor_core import WeightsRejected
from kuavo_rl.algos.base import encode_weights
from kuavo_rl.config import config_from_dict
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.protocol import Acks, InterventionInput, StepObservation


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


def _obs(step, episode=0):
    return StepObservation(episode, step, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, False)


def test_estop_latches_in_the_actor_until_an_explicit_signed_reset():
    now = [0.0]
    actor = make_actor(small_cfg(), clock=lambda: now[0])
    # An e-stop from anyone, even unsigned and with a wrong-sized action, latches before any check.
    actor.on_intervention(InterventionInput(False, np.zeros(7, np.float32), 0.0, estop=True, authenticated=False))
    first = actor.on_step(_obs(0))
    assert np.all(first.action == 0) and not first.intervention
    now[0] = 100.0  # the VR link went silent: still stopped
    assert np.all(actor.on_step(_obs(1)).action == 0)
    # A plain message without the e-stop flag (the old way to clear it) no longer clears it ...
    actor.on_intervention(InterventionInput(True, np.ones(2, np.float32), received_at=100.0))
    assert actor.estopped and np.all(actor.on_step(_obs(2)).action == 0)
    # ... nor does a reset that is not signed by this run.
    with pytest.raises(ValueError, match="not signed"):
        actor.on_intervention(InterventionInput(False, np.zeros(2, np.float32), 100.0, estop_reset=True,
                                                authenticated=False))
    assert actor.estopped
    actor.on_intervention(InterventionInput(False, np.zeros(2, np.float32), received_at=100.0, estop_reset=True))
    assert actor.estopped is False


def test_unsigned_takeover_is_refused():
    actor = make_actor(small_cfg())
    with pytest.raises(ValueError, match="not signed"):
        actor.on_intervention(InterventionInput(True, np.ones(2, np.float32), 0.0, authenticated=False))
    assert not actor.on_step(_obs(0)).intervention


def test_takeover_preempts_an_evaluation_episode_which_then_does_not_count():
    cfg = config_from_dict({"env": {"action_dim": 2, "episode_steps": 5}, "algo": {"hidden_dims": [16, 16]},
                            "run": {"total_env_steps": 5},
                            "actor": {"eval_every_episodes": 0, "final_eval_episodes": 1}})
    now = [0.0]
    actor = make_actor(cfg, clock=lambda: now[0])
    run_episode(actor, 0)  # 5 training steps: the final evaluation episode comes next
    assert actor.final_eval_left == 1
    actor.on_step(_obs(0, episode=1))
    assert actor.episode_is_eval
    actor.on_step(StepObservation(1, 1, np.ones(3, np.float32), np.zeros(2, np.float32), 0.0, False, False))
    human = np.array([0.5, -0.5], np.float32)
    actor.on_intervention(InterventionInput(True, human, received_at=0.0))
    decision = actor.on_step(StepObservation(1, 2, np.ones(3, np.float32), np.zeros(2, np.float32), 0.0, False, False))
    assert decision.intervention and np.allclose(decision.action, human)  # the operator wins over evaluation
    assert not actor.episode_is_eval and not any(row["evaluation"] for row in actor.pending_rows)
    now[0] = 10.0
    actor.on_step(StepObservation(1, 3, np.ones(3, np.float32), np.zeros(2, np.float32), -1.0, False, True))
    assert actor.stats.final_eval_returns == [] and actor.final_eval_left == 1  # evaluated again afterwards
    batch = actor.batches_to_send(resend_after_s=0.0)[-1]
    assert not batch.evaluation.any() and batch.intervention.tolist() == [False, False, True]


def test_acks_for_another_process_of_this_actor_are_ignored_and_counters_continue():
    cfg = small_cfg()
    actor = make_actor(cfg)
    run_episode(actor, 0)
    [batch] = actor.batches_to_send(resend_after_s=0.0)
    assert batch.actor_incarnation == actor.incarnation
    actor.on_ack("run-a", Acks("actor0", "an-earlier-process", 0, persisted=[batch.sequence]))
    assert batch.sequence in actor.unacked  # a forged or stale ack for another process deletes nothing
    actor.on_ack("run-a", Acks("actor0", actor.incarnation, earlier_env_steps=17, persisted=[batch.sequence]))
    assert batch.sequence not in actor.unacked and actor.run_env_steps == 17 + 5


def test_restarted_actor_with_weights_skips_the_random_warm_up():
    cfg = small_cfg(learning_starts=1000)
    learner = LearnerCore(cfg, 3, 2, TERMS)
    fresh = make_actor(cfg)
    restarted = make_actor(cfg)
    version, data, checksum = learner.export_weights()
    restarted.on_weights(version, 500, "lerobot_sac", data, checksum, "run-a")
    obs = np.linspace(-1, 1, 3).astype(np.float32)
    policy_action = restarted.policy.act(obs, deterministic=False)
    assert policy_action.shape == (2,)
    # the fresh actor draws uniform random actions from its own generator; the restarted one runs the policy
    fresh_actions = [fresh._choose(StepObservation(0, i, obs, np.zeros(2, np.float32), 0.0, False, False)).action
                     for i in range(3)]
    expected = np.random.default_rng(cfg.run.seed + 1).uniform(-1.0, 1.0, (3, 2)).astype(np.float32)
    assert np.allclose(fresh_actions, expected)
    restarted_actions = [
        restarted._choose(StepObservation(0, i, obs, np.zeros(2, np.float32), 0.0, False, False)).action
        for i in range(3)]
    assert not np.allclose(restarted_actions, np.random.default_rng(cfg.run.seed + 1).uniform(-1.0, 1.0, (3, 2)))


def test_weights_with_a_huge_version_nan_or_wrong_shapes_are_refused_whole():
    cfg = small_cfg()
    learner = LearnerCore(cfg, 3, 2, TERMS)
    actor = make_actor(cfg)
    version, data, checksum = learner.export_weights()
    actor.on_weights(version, 0, "lerobot_sac", data, checksum, "run-a")
    before = {k: v.clone() for k, v in actor.policy.actor_module.state_dict().items()}
    with pytest.raises(WeightsRejected, match="max_weights_version_jump"):
        actor.on_weights(version + 10**12, 0, "lerobot_sac", data, checksum, "run-a")
    state = learner.backend.actor_state_dict()
    nan_state = {k: v.clone() for k, v in state.items()}
    next(iter(nan_state.values())).view(-1)[0] = float("nan")
    wrong = {k: v.clone() for k, v in state.items()}
    last = [k for k in wrong if k.startswith("policy.")][-1]
    wrong[last] = torch.zeros(*[d + 1 for d in wrong[last].shape])  # every tensor but one fits
    for bad, reason in ((nan_state, "NaN"), (wrong, "shape")):
        payload, digest = encode_weights(bad)
        with pytest.raises(WeightsRejected, match=reason):
            actor.on_weights(version + 1, 0, "lerobot_sac", payload, digest, "run-a")
        after = actor.policy.actor_module.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # nothing was copied in
    assert actor.policy_version == version


def test_finished_actor_ignores_a_resent_final_observation():
    cfg = config_from_dict({"env": {"action_dim": 2, "episode_steps": 5}, "algo": {"hidden_dims": [16, 16]},
                            "run": {"total_env_steps": 5},
                            "actor": {"eval_every_episodes": 0, "final_eval_episodes": 0}})
    actor = make_actor(cfg)
    decisions = run_episode(actor, 0)
    assert decisions[-1] is None and actor.finished
    last = StepObservation(0, 5, np.full(3, 5, np.float32), np.array([0.1, 0.2], np.float32), -0.1, False, True)
    assert actor.on_step(last) is None  # no reset: the run is over


# ---- found by the fuzz test (test/ros/test_fuzz.py) ----------------------------------------------------
def test_a_takeover_outside_the_action_box_is_refused():
    actor = make_actor(small_cfg())
    with pytest.raises(ValueError, match=r"outside the \[-1, 1\] action box"):
        actor.on_intervention(InterventionInput(True, np.array([1e30, -1e30], np.float32), received_at=0.0))
    assert not actor.on_step(_obs(0)).intervention  # the policy acts; no batch the learner would refuse whole


def test_an_observation_the_learner_would_refuse_is_refused_at_the_actor():
    cfg = small_cfg()
    actor = make_actor(cfg)
    actor.on_step(_obs(0))
    huge = StepObservation(0, 1, np.full(3, 1e30, np.float32), np.zeros(2, np.float32), 0.0, False, False)
    with pytest.raises(ValueError, match="max_abs_value"):
        actor.on_step(huge)
    for step in range(1, 6):  # the env resends a sane observation: the episode goes on
        actor.on_step(StepObservation(0, step, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, step == 5))
    (batch,) = actor.batches_to_send(0.0)
    LearnerCore(cfg, 3, 2, TERMS).ingest(batch)  # not refused: the genuine steps are kept
    assert batch.count == 5


def test_a_refused_estop_reset_leaves_the_estop_latched():
    actor = make_actor(small_cfg())
    actor.on_intervention(InterventionInput(False, np.zeros(0, np.float32), 0.0, estop=True, authenticated=False))
    with pytest.raises(ValueError):
        actor.on_intervention(InterventionInput(True, np.full(5, np.nan, np.float32), 0.0, estop_reset=True))
    assert actor.estopped, "a refused message must change nothing"


def test_the_final_evaluation_waits_for_the_weights_of_the_learners_last_update():
    cfg = config_from_dict({**small_cfg().to_dict(), "learner": {"publish_weights_every_updates": 5}}, saved=True)
    actor = make_actor(cfg)
    learner = LearnerCore(cfg, 3, 2, TERMS)
    for episode in range(3):
        run_episode(actor, episode)
    assert actor.final_eval_left is None and not actor.waiting_for_learner()  # 17 behind: within the lag allowed
    run_episode(actor, 3)
    owed = 20 - 4 + 1  # the learner publishes at updates 1, 6, 11, 16 of these 17
    assert actor.final_eval_left == 2 and actor.waiting_for_learner()
    for learner_step, waits in ((11, True), (16, False)):
        version, data, checksum = learner.export_weights()
        actor.on_weights(version, learner_step, "lerobot_sac", data, checksum, "run-a")
        assert actor.waiting_for_learner() is waits and (owed - learner_step >= 5) is waits
    unsynchronised = make_actor(config_from_dict({**cfg.to_dict(), "actor": {**cfg.to_dict()["actor"],
                                                                             "sync_with_learner": False}}, saved=True))
    for episode in range(4):
        run_episode(unsynchronised, episode)
    assert unsynchronised.final_eval_left == 2 and not unsynchronised.waiting_for_learner()
