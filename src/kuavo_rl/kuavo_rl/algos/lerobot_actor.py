"""lerobot 0.4's SAC actor network for state observations, in plain torch, for the actor process.

Importing lerobot's SAC pulls in torchvision, datasets, diffusers and torch._dynamo: about 3 s of
start-up and a few hundred MB per process, on top of torch. The actor needs none of it to act: this
module is lerobot's `Policy` (state encoder, MLP, mean and std heads, tanh-squashed Gaussian) with the
same submodule names, so the learner's published `policy.actor` weights load into it as they are,
and with the same computation and random draws, so it acts as lerobot's actor would (to float
rounding; test/unit/test_lerobot_actor.py checks both against lerobot itself).
"""
from __future__ import annotations

import torch
from torch import nn

# lerobot 0.4's SACConfig defaults that shape the actor (latent_dim, policy_kwargs.std_min/std_max);
# kuavo_rl leaves them at their defaults.
LATENT_DIM = 256
STD_MIN, STD_MAX = 1e-5, 10.0


def standard_normal_like(means: torch.Tensor) -> torch.Tensor:
    """The noise MultivariateNormal.rsample draws (torch.distributions.utils._standard_normal)."""
    return torch.empty_like(means, memory_format=torch.contiguous_format).normal_()


def squashed_gaussian_sample(means: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lerobot's TanhMultivariateNormalDiag(loc=means, scale_diag=std).rsample(), in closed form: it is a
    MultivariateNormal whose *covariance* is diag(std) (so its scale is sqrt(std)), squashed by tanh.
    The same standard-normal draw, without the batched Cholesky. Returns (tanh(x), x)."""
    x = means + std.sqrt() * standard_normal_like(means)
    return torch.tanh(x), x


def _mlp(input_dim: int, hidden_dims: list[int]) -> nn.Sequential:
    """lerobot's MLP with the actor's settings (activate_final, no dropout): Linear, LayerNorm, SiLU per layer."""
    layers: list[nn.Module] = []
    for out_dim in hidden_dims:
        layers += [nn.Linear(input_dim, out_dim), nn.LayerNorm(out_dim), nn.SiLU()]
        input_dim = out_dim
    return nn.Sequential(*layers)


class SACActorNetwork(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden_dims: list[int]):
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.state_encoder = nn.Sequential(nn.Linear(obs_dim, LATENT_DIM), nn.LayerNorm(LATENT_DIM), nn.Tanh())
        self.network = nn.Module()
        self.network.net = _mlp(LATENT_DIM, hidden_dims)
        self.mean_layer = nn.Linear(hidden_dims[-1], act_dim)
        self.std_layer = nn.Linear(hidden_dims[-1], act_dim)

    def forward(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, obs_dim) -> (sampled action in (-1, 1), mean before the tanh), both (B, act_dim)."""
        features = self.network.net(self.encoder.state_encoder(observations))
        means = self.mean_layer(features)
        std = torch.clamp(torch.exp(self.std_layer(features)), STD_MIN, STD_MAX)
        return squashed_gaussian_sample(means, std)[0], means
