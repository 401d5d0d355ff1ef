"""A 10,000-transition batch with distinct values everywhere (shared by publisher and test)."""
import numpy as np

from kuavo_rl.protocol import StepBatch

COUNT, OBS_DIM, ACT_DIM = 10_000, 15, 14
TERMS = ("action_error_sq_mean", "action_error_norm")


def make_big_batch() -> StepBatch:
    rng = np.random.default_rng(2026)
    n = COUNT
    return StepBatch(
        actor_id="actor-big", sequence=77, observation_dim=OBS_DIM, action_dim=ACT_DIM, reward_term_names=TERMS,
        transition_sequences=np.arange(1_000_000, 1_000_000 + n, dtype=np.uint64),
        episode_ids=(np.arange(n) // 200).astype(np.uint64), step_indices=(np.arange(n) % 200 + 1).astype(np.uint32),
        observations=rng.standard_normal((n, OBS_DIM)).astype(np.float32),
        actions=rng.uniform(-1, 1, (n, ACT_DIM)).astype(np.float32),
        next_observations=rng.standard_normal((n, OBS_DIM)).astype(np.float32),
        reward_terms=rng.random((n, len(TERMS))).astype(np.float32), raw_rewards=-rng.random(n).astype(np.float32),
        terminated=rng.random(n) < 0.01, truncated=(np.arange(n) % 200) == 199, intervention=rng.random(n) < 0.3,
        evaluation=rng.random(n) < 0.1, policy_version=(np.arange(n) // 1000).astype(np.uint64))
