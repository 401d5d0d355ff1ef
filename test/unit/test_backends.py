"""Each learning backend runs a real update (lerobot SACPolicy, stable-baselines3 SAC)."""
import numpy as np
import pytest
import torch

from helpers.cores import small_cfg
from kuavo_rl.algos import make_backend
from kuavo_rl.algos.base import TrainBatch


@pytest.mark.parametrize("backend", ["lerobot_sac", "sb3_sac"])
def test_backend_runs_one_update_step(backend):
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


@pytest.mark.parametrize("backend", ["lerobot_sac", "sb3_sac"])
def test_observation_statistics_are_fitted_once_and_reach_the_actor_with_the_weights(backend):
    from helpers.cores import TERMS, make_actor, run_episode, small_cfg
    from kuavo_rl.learner_core import LearnerCore
    cfg = small_cfg(backend=backend)
    learner, actor = LearnerCore(cfg, 3, 2, TERMS), make_actor(cfg)
    for episode in range(2):
        run_episode(actor, episode)  # observations 0..5 per dimension
    for batch in actor.batches_to_send(0.0):
        learner.ingest(batch)
    learner.train_step()
    normalizer = learner.backend.normalizer
    stored = learner.buffers.online.contents().observations
    assert torch.allclose(normalizer.mean, torch.from_numpy(stored.mean(0)))
    assert torch.allclose(normalizer.std, torch.from_numpy(stored.std(0)))
    mean_before = normalizer.mean.clone()
    run_episode(actor, 2, length=5)
    for batch in actor.batches_to_send(0.0):
        batch.observations = batch.observations + 100.0
        learner.ingest(batch)
    learner.train_step()
    assert torch.equal(normalizer.mean, mean_before)  # frozen: the critic does not chase a moving scale
    version, data, checksum = learner.export_weights()
    actor.on_weights(version, 2, backend, data, checksum, "run-a")
    assert torch.equal(actor.policy.normalizer.mean, mean_before)  # the actor applies the learner's transform
    observation = np.full(3, 2.5, np.float32)
    expected = actor.policy.inner.act(((observation - mean_before.numpy()) / normalizer.std.numpy()), True)
    assert np.allclose(actor.policy.act(observation, deterministic=True), expected, atol=1e-6)


def test_bounds_normalization_needs_an_env_with_bounds():
    from kuavo_rl.config import ConfigError, load_config
    cfg = load_config(None, ["algo.observation_normalization=bounds", "env.action_dim=2"])
    from kuavo_rl.learner_core import LearnerCore
    learner = LearnerCore(cfg, 3, 2, ("action_error_sq_mean", "action_error_norm"))
    assert learner.backend.normalizer.mean.tolist() == [0.0, 0.0, 0.0]  # toy observations are in [-1, 1]
    with pytest.raises(ConfigError, match="bounds needs finite observation bounds; env pick_lift"):
        load_config(None, ["env.name=pick_lift", "env.action_dim=4", "algo.observation_normalization=bounds"])


def test_sb3_sac_trains_at_the_learning_rate_set_per_part():
    # All three set (equal, as SB3 needs): it used to train at the default algo.lr instead.
    cfg = small_cfg(backend="sb3_sac", actor_lr=1e-3, critic_lr=1e-3, temperature_lr=1e-3)
    model = make_backend(cfg.algo, 3, 2, seed=0).inner.model
    optimizers = (model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer)
    assert [group["lr"] for optimizer in optimizers for group in optimizer.param_groups] == [1e-3] * 3
