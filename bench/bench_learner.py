"""Learner update rate per backend (full SAC updates/s: critic + actor + temperature) at the
seed's settings. Run by hand: ./kuavo run python bench/bench_learner.py [--dims 2 14] [--threads 1 2]

--versus-lerobot: our LerobotSACBackend.update against lerobot's own learner loop (one training step
of lerobot/rl/learner.py with utd_ratio = policy_update_freq = 1) at identical networks on the same
batch, in one process, interleaved (ABAB... rounds of --round-seconds each); prints ours / lerobot's.
  ./kuavo run python bench/bench_learner.py --versus-lerobot [--rounds 6] [--round-seconds 3]"""
import argparse
import copy
import time
from types import SimpleNamespace

import torch

from kuavo_rl.algos import make_backend
from kuavo_rl.algos.base import TrainBatch
from kuavo_rl.config import config_from_dict


def updates_per_second(backend: str, action_dim: int, batch_size: int, seconds: float, **algo) -> float:
    cfg = config_from_dict({"algo": {"backend": backend, "batch_size": batch_size, **algo}})
    obs_dim = action_dim + 1
    model = make_backend(cfg.algo, obs_dim, action_dim, 0)
    n = batch_size
    batch = TrainBatch(torch.randn(n, obs_dim), torch.rand(n, action_dim) * 2 - 1, -torch.rand(n),
                       torch.randn(n, obs_dim), torch.zeros(n))
    for _ in range(5):  # warm-up (and compilation, if enabled)
        model.update(batch)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.update(batch)
        count += 1
    return count / (time.perf_counter() - start)


def lerobot_learner_step(policy, optimizers, batch: dict, clip_grad_norm_value: float) -> dict:
    """The per-step work of lerobot/rl/learner.py's add_actor_information_and_train (lerobot 0.4.4) once
    the batch is sampled, with utd_ratio = 1 and policy_update_freq = 1 (actor and temperature every
    step), without the discrete critic (none here), policy pushes and logging."""
    from lerobot.rl.learner import check_nan_in_transition, get_observation_features
    actions, rewards, observations = batch["action"], batch["reward"], batch["state"]
    next_observations, done = batch["next_state"], batch["done"]
    check_nan_in_transition(observations=observations, actions=actions, next_state=next_observations)
    observation_features, next_observation_features = get_observation_features(
        policy=policy, observations=observations, next_observations=next_observations)
    forward_batch = {"action": actions, "reward": rewards, "state": observations, "next_state": next_observations,
                     "done": done, "observation_feature": observation_features,
                     "next_observation_feature": next_observation_features}
    loss_critic = policy.forward(forward_batch, model="critic")["loss_critic"]
    optimizers["critic"].zero_grad()
    loss_critic.backward()
    critic_grad_norm = torch.nn.utils.clip_grad_norm_(
        parameters=policy.critic_ensemble.parameters(), max_norm=clip_grad_norm_value).item()
    optimizers["critic"].step()
    infos = {"loss_critic": loss_critic.item(), "critic_grad_norm": critic_grad_norm}
    loss_actor = policy.forward(forward_batch, model="actor")["loss_actor"]
    optimizers["actor"].zero_grad()
    loss_actor.backward()
    infos["actor_grad_norm"] = torch.nn.utils.clip_grad_norm_(
        parameters=policy.actor.parameters(), max_norm=clip_grad_norm_value).item()
    optimizers["actor"].step()
    infos["loss_actor"] = loss_actor.item()
    loss_temperature = policy.forward(forward_batch, model="temperature")["loss_temperature"]
    optimizers["temperature"].zero_grad()
    loss_temperature.backward()
    infos["temperature_grad_norm"] = torch.nn.utils.clip_grad_norm_(
        parameters=[policy.log_alpha], max_norm=clip_grad_norm_value).item()
    optimizers["temperature"].step()
    infos["loss_temperature"] = loss_temperature.item()
    infos["temperature"] = policy.temperature
    policy.update_target_networks()
    return infos


def versus_lerobot(action_dim: int, batch_size: int, rounds: int, round_seconds: float) -> dict:
    """Updates/s of our LerobotSACBackend.update and of lerobot's learner step, interleaved."""
    from kuavo_rl.algos.lerobot_sac import STATE_KEY, LerobotSACBackend
    from lerobot.rl.learner import make_optimizers_and_scheduler
    cfg = config_from_dict({"algo": {"backend": "lerobot_sac", "batch_size": batch_size}})
    obs_dim = action_dim + 1
    torch.manual_seed(0)
    ours = LerobotSACBackend(cfg.algo, obs_dim, action_dim, 0)
    policy = copy.deepcopy(ours.policy)  # identical networks and weights
    assert policy.config.utd_ratio == 1 and policy.config.policy_update_freq == 1
    optimizers, _ = make_optimizers_and_scheduler(SimpleNamespace(policy=policy.config), policy)
    n = batch_size
    batch = TrainBatch(torch.randn(n, obs_dim), torch.rand(n, action_dim) * 2 - 1, -torch.rand(n),
                       torch.randn(n, obs_dim), torch.zeros(n))
    lerobot_batch = {"action": batch.actions, "reward": batch.rewards, "done": batch.terminated,
                     "state": {STATE_KEY: batch.observations}, "next_state": {STATE_KEY: batch.next_observations}}
    sides = {"ours": lambda: ours.update(batch),
             "lerobot": lambda: lerobot_learner_step(policy, optimizers, lerobot_batch, cfg.algo.grad_clip_norm)}
    for step in sides.values():  # warm-up
        for _ in range(5):
            step()
    count = {side: 0 for side in sides}
    elapsed = {side: 0.0 for side in sides}
    for round_ in range(rounds):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))  # ABBA...: neither always goes first
        for side in order:
            start = time.perf_counter()
            while time.perf_counter() - start < round_seconds:
                sides[side]()
                count[side] += 1
            elapsed[side] += time.perf_counter() - start
    return {side: count[side] / elapsed[side] for side in sides}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 14])
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2 (--versus-lerobot: 1)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--compile", action="store_true", help="also measure lerobot_sac with torch.compile")
    parser.add_argument("--versus-lerobot", action="store_true",
                        help="our lerobot_sac update against lerobot's own learner loop, interleaved")
    parser.add_argument("--rounds", type=int, default=6, help="--versus-lerobot: rounds per side")
    parser.add_argument("--round-seconds", type=float, default=3.0, help="--versus-lerobot: seconds per round")
    args = parser.parse_args()
    if args.versus_lerobot:
        print(f"{'dim':>4} {'threads':>7} {'ours upd/s':>10} {'lerobot upd/s':>13} {'ours/lerobot':>12}  "
              f"({args.rounds} rounds x {args.round_seconds:g} s per side, batch {args.batch_size})")
        for threads in args.threads or [1]:
            torch.set_num_threads(threads)
            for dim in args.dims:
                rates = versus_lerobot(dim, args.batch_size, args.rounds, args.round_seconds)
                print(f"{dim:>4} {threads:>7} {rates['ours']:>10.1f} {rates['lerobot']:>13.1f} "
                      f"{rates['ours'] / rates['lerobot']:>12.2f}", flush=True)
        return
    args.threads = args.threads or [1, 2]
    variants = [("lerobot_sac", {}), ("sb3_sac", {})]
    if args.compile:
        variants.insert(1, ("lerobot_sac", {"torch_compile": True}))
    print(f"{'backend':<24} {'dim':>4} {'threads':>7} {'updates/s':>10}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for dim in args.dims:
            for backend, extra in variants:
                rate = updates_per_second(backend, dim, args.batch_size, args.seconds, **extra)
                label = backend + (" (compiled)" if extra else "")
                print(f"{label:<24} {dim:>4} {threads:>7} {rate:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
