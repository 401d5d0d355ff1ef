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
