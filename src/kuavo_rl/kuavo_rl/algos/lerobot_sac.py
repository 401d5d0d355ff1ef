"""lerobot's SACPolicy driven by our own optimizers (docs/background.md):
each learning rate means what its key says, gradient clipping is per part as in lerobot,
torch.compile is a choice (off by default), and the deterministic action is tanh(mean)."""
from __future__ import annotations

import numpy as np
import torch

from kuavo_rl.algos.base import ActorPolicy, Backend, TrainBatch
from kuavo_rl.config import AlgoConfig

STATE_KEY = "observation.state"


def make_sac_policy(cfg: AlgoConfig, obs_dim: int, act_dim: int):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    sac_config = SACConfig(
        input_features={STATE_KEY: PolicyFeature(type=FeatureType.STATE, shape=(obs_dim,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(act_dim,))},
        device="cpu", storage_device="cpu",
        discount=cfg.discount, temperature_init=cfg.temperature_init, num_critics=cfg.num_critics,
        critic_lr=cfg.part_lr("critic"), actor_lr=cfg.part_lr("actor"), temperature_lr=cfg.part_lr("temperature"),
        critic_target_update_weight=cfg.tau, utd_ratio=cfg.utd_ratio, target_entropy=cfg.target_entropy,
        use_backup_entropy=cfg.use_backup_entropy, grad_clip_norm=cfg.grad_clip_norm,
        online_buffer_capacity=cfg.online_buffer_capacity, offline_buffer_capacity=cfg.offline_buffer_capacity,
        use_torch_compile=cfg.torch_compile,
    )
    sac_config.critic_network_kwargs.hidden_dims = list(cfg.hidden_dims)
    sac_config.actor_network_kwargs.hidden_dims = list(cfg.hidden_dims)
    return SACPolicy(sac_config)


def _observation_dict(observations: torch.Tensor) -> dict[str, torch.Tensor]:
    return {STATE_KEY: observations}


class LerobotSACBackend(Backend):
    name = "lerobot_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int):
        # lerobot draws its initial weights from torch's global generator, which make_backend seeds.
        self.cfg = cfg
        self.policy = make_sac_policy(cfg, obs_dim, act_dim)
        self.policy.train()
        params = self.policy.get_optim_params()
        self.optimizers = {
            "critic": torch.optim.Adam(params["critic"], lr=cfg.part_lr("critic")),
            "actor": torch.optim.Adam(params["actor"], lr=cfg.part_lr("actor")),
            "temperature": torch.optim.Adam([params["temperature"]], lr=cfg.part_lr("temperature")),
        }
        self.target_entropy = float(self.policy.target_entropy)
        self.target_entropy_rule = ("configured" if cfg.target_entropy is not None
                                    else f"derived by lerobot: -|A|/2 = {self.target_entropy:g}")
        self.updates = 0

    def _step(self, part: str, loss: torch.Tensor, params) -> None:
        optimizer = self.optimizers[part]
        optimizer.zero_grad()
        loss.backward()
        if self.cfg.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip_norm)
        optimizer.step()

    def _parameters(self, part: str) -> list[torch.Tensor]:
        return [p for group in self.optimizers[part].param_groups for p in group["params"]]

    @staticmethod
    def _lerobot_batch(batch: TrainBatch) -> dict:
        return {"action": batch.actions, "reward": batch.rewards, "done": batch.terminated,
                "state": _observation_dict(batch.observations), "next_state": _observation_dict(batch.next_observations)}

    def critic_update(self, batch: TrainBatch) -> float:
        critic_loss = self.policy.forward(self._lerobot_batch(batch), model="critic")["loss_critic"]
        self._step("critic", critic_loss, self._parameters("critic"))
        self.policy.update_target_networks()
        return critic_loss.item()

    def update(self, batch: TrainBatch) -> dict[str, float]:
        lerobot_batch = self._lerobot_batch(batch)
        critic_loss = self.policy.forward(lerobot_batch, model="critic")["loss_critic"]
        self._step("critic", critic_loss, self._parameters("critic"))
        actor_loss = self.policy.forward(lerobot_batch, model="actor")["loss_actor"]
        bc_loss = self.bc_loss(*batch.offline_rows()) if batch.bc_weight > 0 else None
        self._step("actor", actor_loss if bc_loss is None else actor_loss + batch.bc_weight * bc_loss,
                   self._parameters("actor"))
        temperature_loss = self.policy.forward(lerobot_batch, model="temperature")["loss_temperature"]
        self._step("temperature", temperature_loss, self._parameters("temperature"))
        self.policy.update_target_networks()
        self.updates += 1
        metrics = {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                   "temperature_loss": temperature_loss.item(), "temperature": self.policy.temperature}
        if bc_loss is not None:
            metrics.update(bc_loss=bc_loss.item(), bc_weight=batch.bc_weight)
        if self.updates % 10 == 1:  # Q statistics cost a critic forward; sample them
            with torch.no_grad():
                q = self.policy.critic_forward(lerobot_batch["state"], batch.actions)
            metrics.update(q_mean=q.mean().item(), q_min=q.min().item(), q_max=q.max().item())
        return metrics

    def bc_loss(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean squared error between the deterministic action tanh(mean) and the demonstrated one;
        0 for no rows."""
        if len(observations) == 0:
            return torch.zeros(())
        _, _, mean = self.policy.actor(_observation_dict(observations))
        return torch.nn.functional.mse_loss(torch.tanh(mean), actions)

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        loss = self.bc_loss(observations, actions)
        self._step("actor", loss, self._parameters("actor"))
        return loss.item()

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        return self.policy.actor.state_dict()

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "updates": self.updates,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.updates = state["updates"]


class LerobotSACActor(ActorPolicy):
    backend_name = "lerobot_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int):
        self.policy = make_sac_policy(cfg, obs_dim, act_dim)  # seeded like LerobotSACBackend
        self.policy.eval()

    @property
    def actor_module(self) -> torch.nn.Module:
        return self.policy.actor

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = _observation_dict(torch.as_tensor(observation, dtype=torch.float32).unsqueeze(0))
        sampled, _, mean = self.policy.actor(obs)
        action = torch.tanh(mean) if deterministic else sampled  # lerobot only samples (pitfall 4)
        return action.squeeze(0).numpy().astype(np.float32)
