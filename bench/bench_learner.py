"""Learner update rate per backend (full SAC updates/s: critic + actor + temperature) at the
seed's settings. Run by hand: ./kuavo run python bench/bench_learner.py [--dims 2 14] [--threads 1 2]"""
import argparse
import time

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


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 14])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--compile", action="store_true", help="also measure lerobot_sac with torch.compile")
    args = parser.parse_args()
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
