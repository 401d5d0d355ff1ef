"""stable-baselines3 SAC's own update step (`SAC.train`), fed from our RLPD buffers."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from kuavo_rl.algos.base import ActorPolicy, Backend, TrainBatch
from kuavo_rl.config import AlgoConfig


class _SpacesOnly(gym.Env):
    """SB3 builds its networks from an env's spaces; the learner has no env."""

    def __init__(self, obs_dim: int, act_dim: int):
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (act_dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        raise RuntimeError("the learner never steps an env")


class _HandoverBuffer:
    """Stands in for SB3's replay buffer: `SAC.train` samples the batch we hand it."""

    def __init__(self):
        self.batch = None

    def sample(self, batch_size, env=None):
        from stable_baselines3.common.type_aliases import ReplayBufferSamples
        b = self.batch
        return ReplayBufferSamples(b.observations, b.actions, b.next_observations,
                                   b.terminated.unsqueeze(1), b.rewards.unsqueeze(1))


def make_sb3_sac(cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int, device: torch.device | str = "cpu"):
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import Logger

    # SB3 has one learning rate; validation refuses unequal actor/critic/temperature rates, so any
    # of them (set explicitly or not) is the rate the user asked for.
    model = SAC(
        "MlpPolicy", _SpacesOnly(obs_dim, act_dim), learning_rate=cfg.part_lr("critic"),
        buffer_size=1, learning_starts=0,
        batch_size=cfg.batch_size, tau=cfg.tau, gamma=cfg.discount, train_freq=1, gradient_steps=1,
        ent_coef=f"auto_{cfg.temperature_init}",
        target_entropy="auto" if cfg.target_entropy is None else cfg.target_entropy,
        policy_kwargs={"net_arch": list(cfg.hidden_dims), "n_critics": cfg.num_critics},
        device=device, seed=seed, verbose=0,
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # configure() would leave /tmp/SB3-* dirs
    return model


class SB3SACBackend(Backend):
    name = "sb3_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int,
                 device: torch.device = torch.device("cpu")):
        self.model = make_sb3_sac(cfg, obs_dim, act_dim, seed, device)
        self.handover = _HandoverBuffer()
        self.model.replay_buffer = self.handover
        self.target_entropy = float(self.model.target_entropy)
        self.target_entropy_rule = ("configured" if cfg.target_entropy is not None
                                    else f"derived by SB3: -|A| = {self.target_entropy:g}")

    def update(self, batch: TrainBatch) -> dict[str, float]:
        self.handover.batch = batch
        self.model.train(gradient_steps=1, batch_size=len(batch.rewards))
        logged = self.model.logger.name_to_value
        metrics = {"critic_loss": logged["train/critic_loss"], "actor_loss": logged["train/actor_loss"],
                   "temperature": logged["train/ent_coef"], "temperature_loss": logged.get("train/ent_coef_loss", 0.0)}
        if self.model._n_updates % 10 == 1:
            with torch.no_grad():
                q = torch.stack(self.model.critic(batch.observations, batch.actions))
            metrics.update(q_mean=q.mean().item(), q_min=q.min().item(), q_max=q.max().item())
        return metrics

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        """MSE of the deterministic action (SB3's tanh of the mean) to the demonstrated one, on SB3's
        actor optimizer."""
        actor = self.model.actor
        loss = torch.nn.functional.mse_loss(actor(observations, deterministic=True), actions)
        actor.optimizer.zero_grad()
        loss.backward()
        actor.optimizer.step()
        return loss.item()

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.policy.actor.state_dict()

    def state_dict(self) -> dict:
        m = self.model
        return {"policy": m.policy.state_dict(), "log_ent_coef": m.log_ent_coef.detach().clone(),
                "actor_optimizer": m.actor.optimizer.state_dict(), "critic_optimizer": m.critic.optimizer.state_dict(),
                "ent_coef_optimizer": m.ent_coef_optimizer.state_dict(), "n_updates": m._n_updates}

    def load_state_dict(self, state: dict) -> None:
        m = self.model
        m.policy.load_state_dict(state["policy"])
        with torch.no_grad():
            m.log_ent_coef.copy_(state["log_ent_coef"])
        m.actor.optimizer.load_state_dict(state["actor_optimizer"])
        m.critic.optimizer.load_state_dict(state["critic_optimizer"])
        m.ent_coef_optimizer.load_state_dict(state["ent_coef_optimizer"])
        m._n_updates = state["n_updates"]


class SB3SACActor(ActorPolicy):
    backend_name = "sb3_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int):
        self.model = make_sb3_sac(cfg, obs_dim, act_dim, seed)

    @property
    def actor_module(self) -> torch.nn.Module:
        return self.model.policy.actor

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = torch.as_tensor(observation, dtype=torch.float32).unsqueeze(0)
        return self.model.policy.actor(obs, deterministic=deterministic).squeeze(0).numpy().astype(np.float32)
