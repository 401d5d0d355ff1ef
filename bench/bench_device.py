"""The learner on a GPU against the CPU: full SAC updates/s on each device, from the same seeds and the
same batches, and how far the losses of the two drift apart (float rounding differs between devices;
the mathematics must not). Run by hand on a machine with a GPU:
    ./kuavo run python bench/bench_device.py                      # cpu vs cuda, both backends, dims 2 and 14
    ./kuavo run python bench/bench_device.py --device cpu         # no GPU: checks the script itself
"""
from __future__ import annotations

import argparse
import time

import torch

from kuavo_rl.algos import make_backend
from kuavo_rl.algos.base import TrainBatch, resolve_device
from kuavo_rl.config import config_from_dict

LOSSES = ("critic_loss", "actor_loss", "temperature_loss")
WARM_UP = 5


def batches(count: int, batch_size: int, obs_dim: int, act_dim: int, seed: int) -> list[TrainBatch]:
    generator = torch.Generator().manual_seed(seed)

    def uniform(*shape):
        return torch.rand(*shape, generator=generator) * 2 - 1

    return [TrainBatch(uniform(batch_size, obs_dim), uniform(batch_size, act_dim), -uniform(batch_size).abs(),
                       uniform(batch_size, obs_dim), torch.zeros(batch_size)) for _ in range(count)]


def run(backend: str, device: torch.device, data: list[TrainBatch], obs_dim: int, act_dim: int) -> tuple[float, list]:
    """Updates/s over `data` (timed from the 6th update: the first ones start the device's kernels) and each
    update's losses."""
    cfg = config_from_dict({"algo": {"backend": backend, "batch_size": len(data[0].rewards)}})
    model = make_backend(cfg.algo, obs_dim, act_dim, seed=0, device=device)
    torch.manual_seed(1)  # the actor's samples: the same random stream on each device's run
    losses = []
    for index, batch in enumerate(data):
        if index == WARM_UP:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        metrics = model.update(batch)
        losses.append([metrics[k] for k in LOSSES])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (len(data) - WARM_UP) / (time.perf_counter() - started), losses


def relative_drift(a: list, b: list) -> float:
    return max(abs(x - y) / max(abs(x), abs(y), 1e-6) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (learner.device syntax)")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 14])
    parser.add_argument("--updates", type=int, default=300, help=f"per device and case (> {WARM_UP})")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.set_num_threads(1)
    print(f"cpu vs {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'no GPU'}), "
          f"{args.updates} updates, batch {args.batch_size}, 1 CPU thread")
    print(f"{'backend':<12} {'dim':>4} {'cpu upd/s':>10} {str(device) + ' upd/s':>14} {'speed-up':>9} "
          f"{'first-update loss drift':>24} {'max loss drift':>15}")
    for backend in ("lerobot_sac", "sb3_sac"):
        for dim in args.dims:
            data = batches(args.updates, args.batch_size, dim + 1, dim, seed=dim)
            cpu_rate, cpu_losses = run(backend, torch.device("cpu"), data, dim + 1, dim)
            rate, losses = run(backend, device, data, dim + 1, dim)
            print(f"{backend:<12} {dim:>4} {cpu_rate:>10.1f} {rate:>14.1f} {rate / cpu_rate:>8.2f}x "
                  f"{relative_drift(cpu_losses[:1], losses[:1]):>24.2e} {relative_drift(cpu_losses, losses):>15.2e}",
                  flush=True)


if __name__ == "__main__":
    main()
