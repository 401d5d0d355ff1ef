"""lerobot's SACPolicy driven by our own optimizers (docs/background.md):
each learning rate means what its key says, gradient clipping is per part as in lerobot,
torch.compile is a choice (off by default), and the deterministic action is tanh(mean).

`LerobotSACBackend.update` computes lerobot 0.4's three losses (SACPolicy.compute_loss_critic,
compute_loss_actor, compute_loss_temperature) with lerobot's modules and parameters, steps in
lerobot's order (critic, actor, temperature, target networks) and draws the same random numbers,
but leaves out what `SACPolicy.forward` recomputes or builds only for its API:
- the observation encoder runs once per distinct (encoder, parameters, observations): with the
  shared encoder (lerobot's default, the only one our config builds) 3 passes per update instead of 6;
- the actor's Gaussian in closed form: lerobot's TanhMultivariateNormalDiag(loc, std) is a
  MultivariateNormal whose *covariance* is diag(std) (scale sqrt(std)); it pays for a batched Cholesky
  (and its backward), a triangular solve, matrix-vector products and argument validation;
- the actor loss back-propagates into the actor's optimised parameters only (lerobot also fills
  gradients of the critics and of the shared encoder, which no optimizer step reads);
- no `.item()` of the temperature inside the losses; torch's fused Adam kernel; gradient clipping and
  the target-network update over all tensors at once (torch's multi-tensor ops, the same arithmetic).
The test test/unit/test_lerobot_sac_update.py compares it with lerobot's own forward passes."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from kuavo_rl.algos.base import ActorPolicy, Backend, TrainBatch
from kuavo_rl.algos.lerobot_actor import SACActorNetwork, squashed_gaussian_sample, standard_normal_like
from kuavo_rl.config import AlgoConfig

STATE_KEY = "observation.state"
_LOG_2PI = math.log(2 * math.pi)
_LOG_2 = math.log(2.0)


def make_sac_policy(cfg: AlgoConfig, obs_dim: int, act_dim: int, *, device: str | torch.device = "cpu"):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.sac.configuration_sac import SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    sac_config = SACConfig(
        input_features={STATE_KEY: PolicyFeature(type=FeatureType.STATE, shape=(obs_dim,))},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(act_dim,))},
        device=str(device), storage_device="cpu",
        discount=cfg.discount, temperature_init=cfg.temperature_init, num_critics=cfg.num_critics,
        critic_lr=cfg.part_lr("critic"), actor_lr=cfg.part_lr("actor"), temperature_lr=cfg.part_lr("temperature"),
        critic_target_update_weight=cfg.tau, utd_ratio=cfg.utd_ratio, target_entropy=cfg.target_entropy,
        use_backup_entropy=cfg.use_backup_entropy, grad_clip_norm=cfg.grad_clip_norm,
        online_buffer_capacity=cfg.online_buffer_capacity, offline_buffer_capacity=cfg.offline_buffer_capacity,
        use_torch_compile=cfg.torch_compile,
    )
    sac_config.critic_network_kwargs.hidden_dims = list(cfg.hidden_dims)
    sac_config.actor_network_kwargs.hidden_dims = list(cfg.hidden_dims)
    return SACPolicy(sac_config).to(device)  # initial weights drawn on the CPU: the same on every device


def _observation_dict(observations: torch.Tensor) -> dict[str, torch.Tensor]:
    return {STATE_KEY: observations}


@torch.no_grad()
def _clip_grad_norm_(params: list[torch.Tensor], max_norm: float) -> None:
    """torch.nn.utils.clip_grad_norm_'s arithmetic (the same per-tensor norms, their norm, the clamped
    coefficient), with torch's multi-tensor ops, which that function uses on CUDA only."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total_norm + 1e-6), max=1.0))


class LerobotSACBackend(Backend):
    name = "lerobot_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int, *,
                 device: str | torch.device = "cpu"):
        # lerobot draws its initial weights from torch's global generator, which make_backend seeds.
        self.cfg = cfg
        self.device = torch.device(device)
        self.policy = make_sac_policy(cfg, obs_dim, act_dim, device=self.device)
        self.policy.train()
        params = self.policy.get_optim_params()
        # fused=True: torch's one-pass kernel of the same Adam (same hyper-parameters, same state: step,
        # exp_avg, exp_avg_sq); it rounds differently in the last bit and is ~2.5x faster on the CPU.
        self.optimizers = {
            "critic": torch.optim.Adam(params["critic"], lr=cfg.part_lr("critic"), fused=True),
            "actor": torch.optim.Adam(params["actor"], lr=cfg.part_lr("actor"), fused=True),
            "temperature": torch.optim.Adam([params["temperature"]], lr=cfg.part_lr("temperature"), fused=True),
        }
        self._params = {part: [p for group in optimizer.param_groups for p in group["params"]]
                        for part, optimizer in self.optimizers.items()}
        self.target_entropy = float(self.policy.target_entropy)
        self.target_entropy_rule = ("configured" if cfg.target_entropy is not None
                                    else f"derived by lerobot: -|A|/2 = {self.target_entropy:g}")
        self.updates = 0
        # lerobot's update_target_networks pairs, in its order (the target ensemble shares the online
        # ensemble's encoder, so its encoder "pairs" are a tensor with itself, as in lerobot).
        self._target_params = list(self.policy.critic_target.parameters())
        self._online_params = list(self.policy.critic_ensemble.parameters())
        assert len(self._target_params) == len(self._online_params)

    # -- pieces of lerobot's SACPolicy, computed once -------------------------------------------------

    def _sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """lerobot's Policy.forward after its encoder: (rsampled action, its log-probability, mean).
        TanhMultivariateNormalDiag(loc=mean, scale_diag=std) is MultivariateNormal(mean,
        covariance_matrix=diag(std)) squashed by tanh, written out: scale_tril = cholesky(diag(std))
        = diag(sqrt(std)), the same standard-normal draw, the same log-density terms."""
        actor = self.policy.actor
        outputs = actor.network(features)
        means = actor.mean_layer(outputs)
        if actor.fixed_std is None:
            std = torch.clamp(torch.exp(actor.std_layer(outputs)), actor.std_min, actor.std_max)
        else:
            std = actor.fixed_std.expand_as(means)
        action, x = squashed_gaussian_sample(means, std)
        scale = std.sqrt()
        mahalanobis = ((x - means) / scale).pow(2).sum(-1)  # MultivariateNormal.log_prob(x)
        base_log_prob = -0.5 * (means.shape[-1] * _LOG_2PI + mahalanobis) - scale.log().sum(-1)
        log_abs_det_jacobian = 2.0 * (_LOG_2 - x - F.softplus(-2.0 * x))  # TanhTransform's
        return action, base_log_prob - log_abs_det_jacobian.sum(-1), means

    def _q(self, ensemble: torch.nn.Module, features: torch.Tensor, observations: dict[str, torch.Tensor],
           actions: torch.Tensor) -> torch.Tensor:
        """CriticEnsemble.forward (num_critics, B) on the already encoded observations."""
        if self.cfg.torch_compile:  # lerobot compiled the ensembles' whole forward, their encoder pass included
            return ensemble(observations, actions)
        inputs = torch.cat([features, actions], dim=-1)
        return torch.stack([critic(inputs).squeeze(-1) for critic in ensemble.critics], dim=0)

    def _critic_loss(self, batch: TrainBatch, temperature: torch.Tensor) -> torch.Tensor:
        """compute_loss_critic."""
        policy = self.policy
        with torch.no_grad():
            next_observations = _observation_dict(batch.next_observations)
            next_features = policy.encoder_critic(next_observations)
            next_actor_features = next_features if policy.shared_encoder else policy.actor.encoder(next_observations)
            next_actions, next_log_probs, _ = self._sample(next_actor_features)
            min_q = self._q(policy.critic_target, next_features, next_observations, next_actions).min(dim=0)[0]
            if policy.config.use_backup_entropy:
                min_q = min_q - temperature * next_log_probs
            td_target = batch.rewards + (1 - batch.terminated) * policy.config.discount * min_q
        observations = _observation_dict(batch.observations)
        q_preds = self._q(policy.critic_ensemble, policy.encoder_critic(observations), observations, batch.actions)
        return F.mse_loss(q_preds, td_target.expand_as(q_preds), reduction="none").mean(dim=1).sum()

    def _step(self, part: str, loss: torch.Tensor, only_own_gradients: bool = False) -> None:
        """zero_grad, backward, clip (per part), step. only_own_gradients: back-propagate into this part's
        parameters only (the actor loss also reaches the critics and the shared encoder, whose gradients
        no step of this update reads: the next critic step starts with zero_grad)."""
        optimizer, params = self.optimizers[part], self._params[part]
        optimizer.zero_grad()
        loss.backward(inputs=params if only_own_gradients else None)
        if self.cfg.grad_clip_norm > 0:
            _clip_grad_norm_(params, self.cfg.grad_clip_norm)
        optimizer.step()

    @torch.no_grad()
    def _update_target_networks(self) -> None:
        """update_target_networks: target = online * tau + target * (1 - tau), on all tensors at once."""
        tau = self.policy.config.critic_target_update_weight
        online_scaled = torch._foreach_mul(self._online_params, tau)
        torch._foreach_mul_(self._target_params, 1.0 - tau)
        torch._foreach_add_(self._target_params, online_scaled)

    # -- updates ---------------------------------------------------------------------------------------

    def critic_update(self, batch: TrainBatch) -> float:
        batch = batch.to(self.device)
        critic_loss = self._critic_loss(batch, self.policy.log_alpha.detach().exp())
        self._step("critic", critic_loss)
        self._update_target_networks()
        return critic_loss.item()

    def update(self, batch: TrainBatch) -> dict[str, float]:
        batch = batch.to(self.device)
        policy, actor = self.policy, self.policy.actor
        temperature = policy.log_alpha.detach().exp()  # lerobot's policy.temperature, without its .item()
        critic_loss = self._critic_loss(batch, temperature)
        self._step("critic", critic_loss)

        # compute_loss_actor, on the critics (and shared encoder) the critic step moved
        observations = _observation_dict(batch.observations)
        with torch.no_grad():
            features = policy.encoder_critic(observations)
        actor_features = features if policy.shared_encoder else actor.encoder(observations)
        actions_pi, log_probs, means = self._sample(actor_features)
        min_q = self._q(policy.critic_ensemble, features, observations, actions_pi).min(dim=0)[0]
        actor_loss = ((temperature * log_probs) - min_q).mean()
        bc_loss = self._bc_loss_of_rows(means, batch) if batch.bc_weight > 0 else None
        self._step("actor", actor_loss if bc_loss is None else actor_loss + batch.bc_weight * bc_loss,
                   only_own_gradients=True)

        # compute_loss_temperature: a new sample of the actor the actor step moved
        with torch.no_grad():
            _, log_probs, _ = self._sample(features if policy.shared_encoder else actor.encoder(observations))
        temperature_loss = (-policy.log_alpha.exp() * (log_probs + policy.target_entropy)).mean()
        self._step("temperature", temperature_loss)
        self._update_target_networks()
        self.updates += 1
        metrics = {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                   "temperature_loss": temperature_loss.item(), "temperature": policy.temperature}
        if bc_loss is not None:
            metrics.update(bc_loss=bc_loss.item(), bc_weight=batch.bc_weight)
        if self.updates % 10 == 1:  # Q statistics cost a critic forward; sample them
            with torch.no_grad():
                q = self._q(policy.critic_ensemble, policy.encoder_critic(observations), observations, batch.actions)
            metrics.update(q_mean=q.mean().item(), q_min=q.min().item(), q_max=q.max().item())
        return metrics

    def _bc_loss_of_rows(self, means: torch.Tensor, batch: TrainBatch) -> torch.Tensor:
        """bc_loss(*batch.offline_rows()) from the actor's means of the whole batch (a row's mean does
        not depend on the other rows)."""
        if batch.offline is None:
            return torch.zeros((), device=self.device)
        offline_means = means[batch.offline]
        if len(offline_means) == 0:
            return torch.zeros((), device=self.device)
        standard_normal_like(offline_means)  # the sample lerobot's actor forward draws for these rows
        return F.mse_loss(torch.tanh(offline_means), batch.actions[batch.offline])

    def bc_loss(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Mean squared error between the deterministic action tanh(mean) and the demonstrated one;
        0 for no rows."""
        if len(observations) == 0:
            return torch.zeros((), device=self.device)
        observations, actions = observations.to(self.device), actions.to(self.device)
        actor = self.policy.actor
        features = actor.encoder(_observation_dict(observations), detach=actor.encoder_is_shared)  # as Policy.forward
        means = actor.mean_layer(actor.network(features))
        standard_normal_like(means)  # the sample lerobot's actor forward draws
        return F.mse_loss(torch.tanh(means), actions)

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        loss = self.bc_loss(observations, actions)  # which moves them to the device
        self._step("actor", loss, only_own_gradients=True)
        return loss.item()

    def actor_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.policy.actor.state_dict().items()}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "updates": self.updates,
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        for key, optimizer in self.optimizers.items():
            saved = state["optimizers"][key]  # its groups' flags replace ours: keep the fused kernel
            optimizer.load_state_dict({**saved, "param_groups": [{**group, "fused": True, "foreach": None}
                                                                 for group in saved["param_groups"]]})
        self.updates = state["updates"]


class LerobotSACActor(ActorPolicy):
    """lerobot's SAC actor without importing lerobot (algos/lerobot_actor.py): the actor process starts
    seconds sooner and about 300 MB smaller, and loads the learner's `policy.actor` weights as they are."""
    backend_name = "lerobot_sac"

    def __init__(self, cfg: AlgoConfig, obs_dim: int, act_dim: int, seed: int):
        self.network = SACActorNetwork(obs_dim, act_dim, list(cfg.hidden_dims)).eval()

    @property
    def actor_module(self) -> torch.nn.Module:
        return self.network

    @torch.no_grad()
    def act(self, observation: np.ndarray, deterministic: bool) -> np.ndarray:
        sampled, mean = self.network(torch.as_tensor(observation, dtype=torch.float32).unsqueeze(0))
        action = torch.tanh(mean) if deterministic else sampled  # lerobot only samples (pitfall 4)
        return action.squeeze(0).numpy().astype(np.float32)
