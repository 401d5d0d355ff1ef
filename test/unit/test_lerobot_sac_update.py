"""LerobotSACBackend's lean update against lerobot's own forward passes: the same losses, the same
gradients (as each optimizer step sees them, after clipping), the same parameters, optimizer states,
target networks and temperature after 1 and 3 updates, from the same random state.

The state comparisons run in float64: in float32 the two differ by an ulp here and there (MKL's
Cholesky, which lerobot's Gaussian calls, does not round its square roots exactly), and Adam turns a
last-bit difference of a gradient element near zero into a visible difference of a parameter (its step
is lr * g / (|g| + eps), up to lr / eps = 3e4 times a gradient difference). In float64 the whole state
agrees to ~1e-15; float32 is compared on the losses and gradients.

The reference below is the sequence the backend ran before it computed lerobot's losses itself:
SACPolicy.forward(batch, model="critic") and its step, then "actor" (plus the BC term on the offline
rows), then "temperature", then update_target_networks(); with torch's default (single-tensor) Adam,
where the backend runs torch's fused kernel of the same Adam."""
import copy

import pytest
import torch

from kuavo_rl.algos.base import TrainBatch
from kuavo_rl.algos.lerobot_sac import STATE_KEY, LerobotSACBackend
from kuavo_rl.config import config_from_dict

RTOL, ATOL = 1e-7, 1e-10  # float64 (see above); float32: 1e-5, 1e-6
RTOL32, ATOL32 = 1e-5, 1e-6
PARTS = ("critic", "actor", "temperature")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The learner's setting (learner.torch_threads); two threads on a busy 2-core machine are ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _backend(obs_dim: int, act_dim: int, dtype=torch.float64, **algo) -> LerobotSACBackend:
    torch.manual_seed(0)
    backend = LerobotSACBackend(config_from_dict({"algo": algo}).algo, obs_dim, act_dim, 0)
    backend.policy.to(dtype)  # in place: the optimizers keep their parameters
    return backend


def _batch(obs_dim: int, act_dim: int, n: int = 64, seed: int = 1, bc_weight: float = 0.0,
           dtype=torch.float64) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    return TrainBatch(torch.randn(n, obs_dim, generator=g, dtype=dtype),
                      torch.rand(n, act_dim, generator=g, dtype=dtype) * 2 - 1,
                      torch.randn(n, generator=g, dtype=dtype), torch.randn(n, obs_dim, generator=g, dtype=dtype),
                      (torch.rand(n, generator=g) < 0.2).to(dtype),
                      torch.rand(n, generator=g) < 0.5 if bc_weight > 0 else None, bc_weight)


class Reference:
    """lerobot's forward passes on a copy of `backend`'s policy, with optimizers built as before."""

    def __init__(self, backend: LerobotSACBackend):
        self.policy = copy.deepcopy(backend.policy)
        self.clip = backend.cfg.grad_clip_norm
        params = self.policy.get_optim_params()
        lr = backend.cfg.part_lr
        self.optimizers = {"critic": torch.optim.Adam(params["critic"], lr=lr("critic")),
                           "actor": torch.optim.Adam(params["actor"], lr=lr("actor")),
                           "temperature": torch.optim.Adam([params["temperature"]], lr=lr("temperature"))}

    def _step(self, part: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[part]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        optimizer.zero_grad()
        loss.backward()
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.clip)
        optimizer.step()

    def _bc_loss(self, observations: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if len(observations) == 0:
            return torch.zeros(())
        _, _, mean = self.policy.actor({STATE_KEY: observations})
        return torch.nn.functional.mse_loss(torch.tanh(mean), actions)

    @staticmethod
    def _lerobot_batch(batch: TrainBatch) -> dict:
        return {"action": batch.actions, "reward": batch.rewards, "done": batch.terminated,
                "state": {STATE_KEY: batch.observations}, "next_state": {STATE_KEY: batch.next_observations}}

    def update(self, batch: TrainBatch) -> dict[str, float]:
        lerobot_batch = self._lerobot_batch(batch)
        critic_loss = self.policy.forward(lerobot_batch, model="critic")["loss_critic"]
        self._step("critic", critic_loss)
        actor_loss = self.policy.forward(lerobot_batch, model="actor")["loss_actor"]
        bc_loss = self._bc_loss(*batch.offline_rows()) if batch.bc_weight > 0 else None
        self._step("actor", actor_loss if bc_loss is None else actor_loss + batch.bc_weight * bc_loss)
        temperature_loss = self.policy.forward(lerobot_batch, model="temperature")["loss_temperature"]
        self._step("temperature", temperature_loss)
        self.policy.update_target_networks()
        metrics = {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                   "temperature_loss": temperature_loss.item(), "temperature": self.policy.temperature}
        if bc_loss is not None:
            metrics["bc_loss"] = bc_loss.item()
        return metrics

    def critic_update(self, batch: TrainBatch) -> float:
        critic_loss = self.policy.forward(self._lerobot_batch(batch), model="critic")["loss_critic"]
        self._step("critic", critic_loss)
        self.policy.update_target_networks()
        return critic_loss.item()

    def behaviour_cloning_update(self, observations: torch.Tensor, actions: torch.Tensor) -> float:
        loss = self._bc_loss(observations, actions)
        self._step("actor", loss)
        return loss.item()


def _record_gradients(optimizers: dict) -> list:
    """(part, gradients) of every optimizer step, as the step sees them (after clipping)."""
    seen = []

    def hook(part):
        def record(optimizer, args, kwargs):
            seen.append((part, [None if p.grad is None else p.grad.clone()
                                for group in optimizer.param_groups for p in group["params"]]))
        return record
    for part, optimizer in optimizers.items():
        optimizer.register_step_pre_hook(hook(part))
    return seen


def _close(actual, expected, what: str) -> None:
    rtol, atol = (RTOL, ATOL) if expected.dtype == torch.float64 else (RTOL32, ATOL32)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def _assert_same_state(ours: LerobotSACBackend, reference: Reference) -> None:
    expected = reference.policy.state_dict()
    actual = ours.policy.state_dict()
    assert list(actual) == list(expected)  # parameters, target networks and log_alpha, same keys
    for key in expected:
        _close(actual[key], expected[key], key)
    for part in PARTS:
        actual_state = ours.optimizers[part].state_dict()["state"]
        expected_state = reference.optimizers[part].state_dict()["state"]
        assert actual_state.keys() == expected_state.keys()
        for index, state in expected_state.items():
            for name, value in state.items():
                _close(actual_state[index][name], value, f"{part} optimizer state {index}.{name}")


def _assert_same_gradients(actual: list, expected: list) -> None:
    assert [part for part, _ in actual] == [part for part, _ in expected]
    for (part, actual_grads), (_, expected_grads) in zip(actual, expected):
        assert len(actual_grads) == len(expected_grads)
        for i, (a, e) in enumerate(zip(actual_grads, expected_grads)):
            assert (a is None) == (e is None), f"{part} gradient {i}"
            if e is not None:
                _close(a, e, f"{part} gradient {i}")


CASES = {
    "dim14-2critics-clip10-backup": dict(obs_dim=15, act_dim=14, algo=dict(grad_clip_norm=10.0)),
    "dim2-3critics-noclip-nobackup": dict(obs_dim=3, act_dim=2, algo=dict(
        num_critics=3, grad_clip_norm=0.0, use_backup_entropy=False, hidden_dims=[32, 32], temperature_init=0.3)),
    "dim3-bc-rows": dict(obs_dim=4, act_dim=3, bc_weight=0.5, algo=dict(
        grad_clip_norm=1.0, hidden_dims=[32, 32], target_entropy=-1.0, actor_lr=1e-3)),
}


@pytest.fixture
def separate_encoders(monkeypatch):
    """lerobot's shared_encoder=False (our config builds lerobot's default, shared): the actor then
    has its own encoder, which its optimizer moves."""
    from lerobot.policies.sac.configuration_sac import SACConfig
    post_init = SACConfig.__post_init__

    def unshared(self):
        post_init(self)
        self.shared_encoder = False
    monkeypatch.setattr(SACConfig, "__post_init__", unshared)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_update_matches_lerobots_forward_passes(case):
    _compare_three_updates(case)


def test_update_matches_lerobots_forward_passes_with_separate_encoders(separate_encoders):
    ours = _compare_three_updates(dict(obs_dim=4, act_dim=3, bc_weight=0.5, algo=dict(
        grad_clip_norm=1.0, hidden_dims=[32, 32])))
    assert not ours.policy.shared_encoder
    assert any(name.startswith("encoder") for name, _ in ours.policy.actor.named_parameters())
    assert len(ours.optimizers["actor"].param_groups[0]["params"]) == len(list(ours.policy.actor.parameters()))


def _compare_three_updates(case: dict) -> LerobotSACBackend:
    ours = _backend(case["obs_dim"], case["act_dim"], **case["algo"])
    reference = Reference(ours)
    our_gradients, reference_gradients = _record_gradients(ours.optimizers), _record_gradients(reference.optimizers)
    for update in range(3):
        batch = _batch(case["obs_dim"], case["act_dim"], seed=update, bc_weight=case.get("bc_weight", 0.0))
        torch.manual_seed(100 + update)
        metrics = ours.update(batch)
        torch.manual_seed(100 + update)
        expected = reference.update(batch)
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, rel=RTOL, abs=ATOL), key
        assert ("bc_loss" in metrics) == (case.get("bc_weight", 0.0) > 0)
        assert ("q_mean" in metrics) == (update == 0)  # sampled every 10th update
        _assert_same_gradients(our_gradients, reference_gradients)
        if update in (0, 2):
            _assert_same_state(ours, reference)
    assert len(our_gradients) == 9 and ours.updates == 3
    return ours


def test_float32_update_matches_lerobots_losses_and_gradients():
    ours = _backend(15, 14, dtype=torch.float32, grad_clip_norm=10.0)
    reference = Reference(ours)
    our_gradients, reference_gradients = _record_gradients(ours.optimizers), _record_gradients(reference.optimizers)
    batch = _batch(15, 14, n=256, bc_weight=0.3, dtype=torch.float32)
    torch.manual_seed(11)
    metrics = ours.update(batch)
    torch.manual_seed(11)
    expected = reference.update(batch)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=RTOL32, abs=ATOL32), key
    _assert_same_gradients(our_gradients, reference_gradients)


def test_the_update_draws_the_same_random_numbers_as_lerobot():
    """The state of torch's generator after an update (with BC rows) is the one lerobot's passes leave."""
    ours = _backend(4, 3, dtype=torch.float32, hidden_dims=[16, 16])
    reference = Reference(ours)
    batch = _batch(4, 3, bc_weight=0.5, dtype=torch.float32)
    torch.manual_seed(7)
    ours.update(batch)
    after_ours = torch.get_rng_state()
    torch.manual_seed(7)
    reference.update(batch)
    assert torch.equal(after_ours, torch.get_rng_state())


def test_critic_and_behaviour_cloning_updates_match_lerobots():
    ours = _backend(5, 3, hidden_dims=[32, 32], grad_clip_norm=1.0)
    reference = Reference(ours)
    our_gradients, reference_gradients = _record_gradients(ours.optimizers), _record_gradients(reference.optimizers)
    batch = _batch(5, 3)
    for _ in range(2):
        torch.manual_seed(3)
        loss = ours.critic_update(batch)
        torch.manual_seed(3)
        assert loss == pytest.approx(reference.critic_update(batch), rel=RTOL)
        torch.manual_seed(4)
        loss = ours.behaviour_cloning_update(batch.observations, batch.actions)
        torch.manual_seed(4)
        assert loss == pytest.approx(reference.behaviour_cloning_update(batch.observations, batch.actions), rel=RTOL)
    _assert_same_gradients(our_gradients, reference_gradients)
    _assert_same_state(ours, reference)


def test_a_checkpoint_of_the_previous_optimizers_loads_and_continues_alike():
    """A checkpoint written with torch's default Adam (the previous format) loads into the backend,
    which then updates as lerobot's passes do; the policy's state-dict keys are lerobot's."""
    ours = _backend(3, 2, hidden_dims=[16, 16])
    reference = Reference(ours)
    torch.manual_seed(5)
    reference.update(_batch(3, 2))
    checkpoint = {"policy": reference.policy.state_dict(), "updates": 1,
                  "optimizers": {k: o.state_dict() for k, o in reference.optimizers.items()}}
    ours.load_state_dict(copy.deepcopy(checkpoint))
    assert list(ours.state_dict()["policy"]) == list(checkpoint["policy"])
    assert all(group["fused"] for o in ours.optimizers.values() for group in o.param_groups)
    batch = _batch(3, 2, seed=9)
    torch.manual_seed(6)
    ours.update(batch)
    torch.manual_seed(6)
    reference.update(batch)
    _assert_same_state(ours, reference)
    assert all(v.device.type == "cpu" for v in ours.actor_state_dict().values())


def test_the_device_argument_places_the_policy_and_its_optimizers():
    """Only the CPU can be tested here; the default stays the CPU."""
    cfg = config_from_dict({"algo": {"hidden_dims": [16, 16]}}).algo
    backend = LerobotSACBackend(cfg, 3, 2, 0, device=torch.device("cpu"))
    assert backend.policy.config.device == "cpu" and backend.policy.config.storage_device == "cpu"
    assert all(p.device.type == "cpu" for p in backend.policy.parameters())
    backend.update(_batch(3, 2, dtype=torch.float32, bc_weight=0.5))
    assert all(s["exp_avg"].device.type == "cpu" for o in backend.optimizers.values() for s in o.state.values())
    assert all(v.device.type == "cpu" for v in backend.actor_state_dict().values())
