import numpy as np

from kuavo_rl.buffer import ReplayBuffer, RLPDBuffers
from kuavo_rl.protocol import TransitionArrays


def transitions(start: int, n: int, intervention=False) -> TransitionArrays:
    seq = np.arange(start, start + n)
    return TransitionArrays(
        observations=np.repeat(seq[:, None], 3, 1).astype(np.float32), actions=np.zeros((n, 2), np.float32),
        reward_terms=np.stack([seq, -seq], 1).astype(np.float32), raw_rewards=seq.astype(np.float32),
        next_observations=np.repeat(seq[:, None] + 1, 3, 1).astype(np.float32),
        terminated=np.zeros(n, bool), intervention=np.full(n, intervention), sequences=seq.astype(np.uint64))


def test_ring_buffer_keeps_the_newest_in_order():
    buffer = ReplayBuffer(5, 3, 2, 2)
    buffer.add(transitions(0, 4))
    buffer.add(transitions(4, 3))
    assert len(buffer) == 5
    assert buffer.contents().sequences.tolist() == [2, 3, 4, 5, 6]
    buffer.add(transitions(100, 12))
    assert buffer.contents().sequences.tolist() == [107, 108, 109, 110, 111]


def test_interventions_go_to_both_buffers_and_batches_follow_the_ratio():
    buffers = RLPDBuffers(1000, 1000, 3, 2, 2, offline_ratio=0.25)
    rng = np.random.default_rng(0)
    buffers.add(transitions(0, 100))
    sample, n_offline = buffers.sample(64, rng)
    assert sample.intervention.sum() == 0 and n_offline == 0  # no offline data yet: all online
    buffers.add(transitions(100, 10, intervention=True))
    assert len(buffers.online) == 110 and len(buffers.offline) == 10
    assert set(buffers.offline.contents().sequences.tolist()) == set(range(100, 110))
    batch, n_offline = buffers.sample(256, rng)
    assert len(batch) == 256 and n_offline == 64  # the logged offline share is 0.25, as configured
    assert abs(batch.intervention.mean() - (0.25 + 0.75 * 10 / 110)) < 0.08  # takeovers also come from online


def test_state_dict_round_trip():
    buffer = ReplayBuffer(8, 3, 2, 2)
    buffer.add(transitions(0, 11))
    restored = ReplayBuffer(8, 3, 2, 2)
    restored.load_state_dict(buffer.state_dict())
    assert restored.contents().sequences.tolist() == buffer.contents().sequences.tolist()
    restored.add(transitions(50, 1))
    buffer.add(transitions(50, 1))
    assert restored.contents().sequences.tolist() == buffer.contents().sequences.tolist()
