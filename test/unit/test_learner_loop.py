"""LearnerLoop without ROS: the ack ledger (received, then persisted only by a checkpoint), the
checkpoint cadence, and a restart that must neither lose nor double-count a resent batch."""
import numpy as np

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.envs import EnvSpec
from kuavo_rl.learner_loop import AckLedger, CheckpointCadence, LearnerLoop
from kuavo_rl.protocol import Acks

SPEC = EnvSpec(3, 2, TERMS)


def one_episode_batches(cfg):
    actor = make_actor(cfg)
    run_episode(actor, 0)
    return actor.batches_to_send(resend_after_s=0.0)


def test_ledger_persists_only_what_a_checkpoint_holds():
    ledger = AckLedger()
    a = ("a", "process-1")
    assert ledger.on_ingested(a, 0, duplicate=False) is False
    assert ledger.on_ingested(a, 1, duplicate=False) is False
    assert ledger.on_ingested(a, 1, duplicate=True) is False  # a resend before the checkpoint: still waiting
    assert ledger.pending
    assert ledger.persisted() == {a: [0, 1]}
    assert not ledger.pending and ledger.persisted() == {}
    assert ledger.on_ingested(a, 0, duplicate=True) is True  # already in the checkpoint: persisted at once


def test_cadence_every_n_updates_and_on_a_period_while_data_waits():
    now = [0.0]
    cadence = CheckpointCadence(every_updates=100, period_s=5.0, clock=lambda: now[0])
    assert not cadence.due(99, unpersisted=False)
    assert cadence.due(103, unpersisted=False)  # crossed 100 within a chunk of updates
    cadence.mark(103)
    assert not cadence.due(150, unpersisted=True)  # data waits, but the period has not passed
    now[0] = 5.0
    assert cadence.due(150, unpersisted=True)
    assert not cadence.due(150, unpersisted=False)


def test_restarted_learner_acks_a_resent_batch_as_persisted_without_storing_it_twice(tmp_path):
    cfg = small_cfg(backend="sb3_sac")
    batches = one_episode_batches(cfg)
    loop = LearnerLoop(cfg, SPEC, tmp_path, quiet=True)
    acks = Acks("actor0", batches[0].actor_incarnation)
    for batch in batches:
        assert loop.receive(batch, acks) is None
    assert acks.received == [b.sequence for b in batches] and acks.persisted == []
    path, persisted = loop.checkpoint()
    assert path.exists() and persisted[0].persisted == [b.sequence for b in batches]
    loop.close()

    restarted = LearnerLoop(cfg, SPEC, tmp_path, quiet=True)
    assert "resumed from" in restarted.resume()
    resent = Acks("actor0", batches[0].actor_incarnation)
    restarted.receive(batches[0], resent)
    assert resent.persisted == [batches[0].sequence] and resent.received == []
    assert len(restarted.core.buffers.online) == sum(b.count for b in batches)
    restarted.close()


def test_a_rejected_batch_is_answered_with_its_reason_and_counted(tmp_path):
    cfg = small_cfg(backend="sb3_sac")
    (batch,) = one_episode_batches(cfg)
    batch.observations[0, 0] = np.nan
    loop = LearnerLoop(cfg, SPEC, tmp_path, quiet=True)
    acks = Acks("actor0", batch.actor_incarnation)
    reason = loop.receive(batch, acks)
    assert "NaN" in reason and acks.rejected == [batch.sequence] and acks.rejected_reasons == [reason]
    assert loop.batches_rejected == 1 and len(loop.core.buffers.online) == 0
    loop.close()


def test_in_memory_loop_writes_no_checkpoint_but_still_acknowledges(tmp_path):
    cfg = small_cfg(backend="sb3_sac")
    loop = LearnerLoop(cfg, SPEC, tmp_path, persist=False, quiet=True)
    batches = one_episode_batches(cfg)
    acks = Acks("actor0", batches[0].actor_incarnation)
    for batch in batches:
        loop.receive(batch, acks)
    path, persisted = loop.checkpoint()
    assert path is None and persisted[0].persisted == acks.received
    assert not (tmp_path / "checkpoints").exists()
    loop.close()


def test_resuming_with_another_reward_says_the_stored_data_is_relabelled(tmp_path):
    cfg = small_cfg(backend="sb3_sac")
    loop = LearnerLoop(cfg, SPEC, tmp_path, quiet=True)
    batches = one_episode_batches(cfg)
    for batch in batches:
        loop.receive(batch, Acks("actor0", batch.actor_incarnation))
    loop.checkpoint()
    loop.close()
    (tmp_path / "checkpoints" / ".latest.pt.tmp-999999999").write_bytes(b"half a checkpoint")  # a killed write
    changed = small_cfg(backend="sb3_sac")
    changed.reward.scale = 2.0
    restarted = LearnerLoop(changed, SPEC, tmp_path, quiet=True)
    assert not (tmp_path / "checkpoints" / ".latest.pt.tmp-999999999").exists()
    message = restarted.resume()
    assert "reward configuration changed" in message and "'scale': 2.0" in message
    restarted.close()


def test_training_stops_where_weights_are_due_so_every_learner_publishes_at_the_same_updates(tmp_path):
    cfg = small_cfg()
    cfg.learner.publish_weights_every_updates = 3
    loop = LearnerLoop(cfg, SPEC, tmp_path, persist=False, quiet=True)
    actor = make_actor(cfg)
    for episode in range(3):
        run_episode(actor, episode)
    for batch in actor.batches_to_send(resend_after_s=0.0):
        loop.receive(batch, loop.new_acks(actor.actor_id, actor.incarnation))
    assert loop.core.updates_due() == 15 - 4 + 1
    published, chunks = [], []
    while chunk := loop.train(max_updates=10):  # the learner node's chunks
        chunks.append(chunk)
        if loop.core.weights_due():
            loop.core.export_weights()
            published.append(loop.core.updates)
    assert published == [1, 4, 7, 10] and chunks == [1, 3, 3, 3, 2] and loop.core.updates == 12
