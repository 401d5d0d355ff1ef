"""The actor process's lerobot SAC actor (plain torch, no lerobot import) against lerobot's own."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from kuavo_rl.algos.lerobot_actor import SACActorNetwork
from kuavo_rl.algos.lerobot_sac import STATE_KEY, make_sac_policy
from kuavo_rl.config import load_config


@pytest.mark.parametrize("obs_dim,act_dim,hidden", [(3, 2, [16, 16]), (15, 14, [256, 256]), (32, 6, [64, 32, 16])])
def test_lerobots_actor_weights_load_as_they_are_and_it_acts_identically(obs_dim, act_dim, hidden):
    cfg = load_config(None, [f"algo.hidden_dims={hidden}"]).algo
    torch.manual_seed(0)
    lerobot_actor = make_sac_policy(cfg, obs_dim, act_dim).actor.eval()
    with torch.no_grad():  # weights unlike any initialisation: every parameter must land in its place
        for parameter in lerobot_actor.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    ours = SACActorNetwork(obs_dim, act_dim, hidden)
    ours.load_state_dict(lerobot_actor.state_dict(), strict=True)
    observations = torch.randn(64, obs_dim) * 3
    with torch.no_grad():
        torch.manual_seed(1)
        sampled, _, mean = lerobot_actor({STATE_KEY: observations})
        torch.manual_seed(1)
        our_sampled, our_mean = ours(observations)
    assert torch.equal(our_mean, mean)
    assert torch.allclose(our_sampled, sampled, rtol=0, atol=1e-6)
    assert not torch.allclose(sampled, torch.tanh(mean), atol=1e-3)  # a sample, not the mean


def test_the_actor_acts_without_importing_lerobot():
    code = ("import sys, numpy as np; from kuavo_rl.algos import make_actor_policy; "
            "from kuavo_rl.config import load_config; policy = make_actor_policy(load_config(None).algo, 15, 14, 0); "
            "a = policy.act(np.zeros(15, np.float32), deterministic=False); "
            "print(a.shape, sorted(m for m in ('lerobot', 'torchvision', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(14,) []"
