"""Do demonstrations make the simulated Kuavo box lift learnable? For each seed: record 30 scripted
demonstrations (random start poses, a randomised box every episode, action noise), then train
in-process (the pipeline's env, actor and learner code) under each condition and evaluate the
deterministic policy on 20 fixed evaluation episodes every --eval-every env steps:

    warm_start   demonstrations in the offline buffer + behaviour-cloning pre-training + a BC term
    demos_only   demonstrations in the offline buffer (RLPD), no behaviour cloning
    no_demos     no demonstrations at all

Success is the bridge's own judge (the terminal reward term `success`). Run by hand:

    ./kuavo run python bench/kuavo_demos.py [--seeds 0 1 2] [--env-steps 4000] [--jobs 2] [--out result.yaml]
"""
import argparse
import copy
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "kuavo_sim_box_lift.yaml"
# Every condition: the box lift's experiment file with the initial temperature of
# config/kuavo_sim_box_lift_demos.yaml (0.1; the team's 1.0 pulls a cloned policy's mean away).
COMMON = ["algo.temperature_init=0.1"]
CONDITIONS = {  # as config/kuavo_sim_box_lift_demos.yaml: clone, then a constant BC term on the offline rows
    "warm_start": ["algo.bc_pretrain_updates=2000", "algo.bc_weight_start=10.0", "algo.bc_weight_end=10.0"],
    "demos_only": [],
    "no_demos": None,  # no demos.datasets
}


def success_rate(cfg, policy, episodes: int, seed: int) -> tuple[float, float]:
    """(success share, mean raw return) of the deterministic policy on `episodes` fixed episodes."""
    from kuavo_rl.env_core import EnvStepper
    from kuavo_rl.envs import inprocess_variant, make_env
    from kuavo_rl.record import Controller, run_episode

    class Deterministic(Controller):
        def act(self, observation):
            return policy.act(observation, deterministic=True)

    env = make_env(inprocess_variant(cfg.env), seed=seed)
    stepper = EnvStepper(env, seed=seed)
    outcomes = [run_episode(stepper, Deterministic())[0] for _ in range(episodes)]
    env.close()
    success = [float(t.reward_terms[-1][3] > 0) for t in outcomes]
    return float(np.mean(success)), float(np.mean([t.raw_rewards.sum() for t in outcomes]))


def run_condition(condition: str, seed: int, demos: str, args) -> dict:
    from kuavo_rl.config import load_config
    from kuavo_rl.inprocess import train_inprocess
    torch.set_num_threads(1)
    overrides = ["env.kuavo.link=inprocess", f"run.seed={seed}", f"run.total_env_steps={args.env_steps}",
                 "run.progress_line=false", "actor.final_eval_episodes=0", *COMMON]
    if CONDITIONS[condition] is not None:
        overrides += [f"demos.datasets=[{demos}]", *CONDITIONS[condition]]
    overrides += args.set  # the user's overrides win
    cfg = load_config(CONFIG, overrides)
    curve, eval_time, started = [], [0.0], time.monotonic()

    def evaluate(loop, actor) -> None:
        steps = loop.core.env_steps
        due = not curve or steps >= curve[-1]["env_steps"] + args.eval_every
        if not due and not (actor.finished and curve[-1]["env_steps"] < steps):  # and once at the end
            return
        before = time.monotonic()
        train_wall_s = before - started - eval_time[0]  # training only: evaluations so far excluded
        rate, mean_return = success_rate(cfg, copy.deepcopy(actor.policy), args.eval_episodes, 10_000 + seed)
        eval_time[0] += time.monotonic() - before
        curve.append({"env_steps": steps, "train_wall_s": round(train_wall_s, 1), "success": rate,
                      "eval_return": round(mean_return, 2), "updates": loop.core.updates})
        print(f"[{condition} seed {seed}] {steps} env steps, {loop.core.updates} updates: success {rate:.0%}, "
              f"return {mean_return:.1f}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as run_dir:
        train_inprocess(cfg, run_dir, quiet=True, after_step=evaluate)
    return {"condition": condition, "seed": seed, "curve": curve,
            "wall_time_s": round(time.monotonic() - started, 1), "eval_time_s": round(eval_time[0], 1)}


def record_demos(seed: int, root: Path, episodes: int) -> dict:
    from kuavo_rl.config import load_config
    from kuavo_rl.record import record
    cfg = load_config(CONFIG, ["env.kuavo.link=inprocess", f"run.seed={seed}"])
    result = record(cfg, "scripted", episodes, root, noise=0.1, quiet=True)
    return {"seed": seed, "episodes": episodes, "transitions": result.transitions, "labels": result.labels,
            "wall_time_s": round(result.wall_time_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    parser.add_argument("--demos", type=int, default=30, help="scripted demonstrations per seed")
    parser.add_argument("--env-steps", type=int, default=4000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="extra configuration overrides")
    parser.add_argument("--out", default="bench_kuavo_demos.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
        demos = {seed: Path(tmp) / f"demos_seed{seed}" for seed in args.seeds}
        recordings = list(pool.map(record_demos, args.seeds, [demos[s] for s in args.seeds],
                                   [args.demos] * len(args.seeds)))
        jobs = [(c, s) for s in args.seeds for c in args.conditions]
        results = list(pool.map(run_condition, [c for c, _ in jobs], [s for _, s in jobs],
                                [str(demos[s]) for _, s in jobs], [args] * len(jobs)))
    summary = {}
    for condition in args.conditions:
        finals = [r["curve"][-1]["success"] for r in results if r["condition"] == condition]
        summary[condition] = {"final_success_mean": round(float(np.mean(finals)), 3), "final_success": finals}
    report = {"env_steps": args.env_steps, "eval_episodes": args.eval_episodes, "demos": recordings,
              "summary": summary, "runs": results}
    Path(args.out).write_text(yaml.safe_dump(report, sort_keys=False))
    print(yaml.safe_dump(summary, sort_keys=False))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
