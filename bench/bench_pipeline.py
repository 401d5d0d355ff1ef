"""Wall time of the same training through the ROS 2 pipeline (env node, actor, learner over DDS) and
in-process (one loop), interleaved, several repeats; the ratio pipeline / in-process, the learning
result of each run, and where the CPU went (seconds per process).

Run by hand (minutes per repeat):
    ./kuavo run python bench/bench_pipeline.py                       # the default main job, 3 repeats
    ./kuavo run python bench/bench_pipeline.py --competing 1         # with one CPU-bound process beside it
    ./kuavo run python bench/bench_pipeline.py --set run.total_env_steps=3000 --repeats 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

MODES = ("pipeline", "in-process")


def role_of(process: psutil.Process) -> str | None:
    """learner | actor | env | ... for a node process, cli for the kuavo-rl command itself, None when it
    cannot be read (it just exited: its last sample stands)."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return None
    if "kuavo_rl.nodes." in command:
        return command.split("kuavo_rl.nodes.")[1].split()[0].removesuffix("_node")
    return "cli"


def ready_after(log: Path, launched: float) -> float:
    """Seconds from launch to a node's first log line (written at the end of its start-up)."""
    for line in log.read_text().splitlines():
        if line.startswith("[INFO] ["):
            return float(line.split("[")[2].split("]")[0]) - launched
    return float("nan")


def run_once(mode: str, run_dir: Path, config: str | None, overrides: list[str]) -> dict:
    """One `kuavo-rl train` run: wall time from launch to exit; per process role its CPU seconds, its
    peak resident memory and (pipeline nodes) the seconds from launch to the end of its start-up."""
    command = [sys.executable, "-m", "kuavo_rl.cli", "train", "--quiet", "--run-dir", str(run_dir)]
    command += ["--config", config] if config else []
    command += ["--inprocess"] if mode == "in-process" else []
    for override in overrides:
        command += ["--set", override]
    started, launched = time.monotonic(), time.time()
    popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(popen.pid)
    cpu: dict[int, tuple[str, float]] = {}
    rss: dict[str, float] = {}
    while popen.poll() is None:
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            processes = []
        for process in processes:
            try:
                times = process.cpu_times()
                role = cpu.get(process.pid, (None,))[0] or role_of(process)
                if role is None:
                    continue
                cpu[process.pid] = (role, times.user + times.system)
                rss[role] = max(rss.get(role, 0.0), process.memory_info().rss / 2**20)
            except psutil.Error:
                pass
        time.sleep(0.2)
    wall = time.monotonic() - started
    stderr = popen.stderr.read()
    if popen.returncode != 0:
        raise RuntimeError(f"{mode} run failed ({popen.returncode}):\n{stderr[-2000:]}")
    result = yaml.safe_load((run_dir / "result.yaml").read_text())
    by_role: dict[str, float] = {}
    for role, seconds in cpu.values():
        by_role[role] = by_role.get(role, 0.0) + seconds
    ready = {log.stem: ready_after(log, launched) for log in sorted((run_dir / "logs").glob("*.log"))}
    return {"mode": mode, "wall_s": wall, "updates": result["updates"], "env_steps": result["env_steps"],
            "final_eval": result["final_eval_return"], "cpu_s": by_role, "rss_mb": rss, "ready_s": ready}


def start_competitors(count: int) -> list[subprocess.Popen]:
    """CPU-bound processes (a busy loop each), the 'other job on the machine'."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="experiment YAML (default: the main job's, config/toy_mse.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="pipeline/in-process pairs, order alternating")
    parser.add_argument("--competing", type=int, default=0, help="CPU-bound processes running throughout")
    args = parser.parse_args()
    competitors = start_competitors(args.competing)
    rows, ratios = [], []
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, {args.competing} competing process(es); "
          f"config {args.config or 'default'} {' '.join(args.set)}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
            for repeat in range(args.repeats):
                order = MODES if repeat % 2 == 0 else tuple(reversed(MODES))
                pair = {}
                for mode in order:
                    row = run_once(mode, Path(tmp) / f"{mode}-{repeat}", args.config, args.set)
                    pair[mode] = row
                    rows.append(row)
                    cpu = ", ".join(f"{role} {seconds:.1f}" for role, seconds in sorted(row["cpu_s"].items()))
                    rss = ", ".join(f"{role} {mb:.0f}" for role, mb in sorted(row["rss_mb"].items()))
                    ready = ", ".join(f"{role} {s:.1f}" for role, s in row["ready_s"].items())
                    print(f"repeat {repeat} {mode:<10} wall {row['wall_s']:6.1f} s  updates {row['updates']} env steps "
                          f"{row['env_steps']}  final eval {row['final_eval']:.3f}  CPU s: {cpu}  peak RSS MB: {rss}"
                          + (f"  ready after s: {ready}" if ready else ""), flush=True)
                ratios.append(pair["pipeline"]["wall_s"] / pair["in-process"]["wall_s"])
                print(f"repeat {repeat} ratio pipeline / in-process: {ratios[-1]:.3f}", flush=True)
    finally:
        for competitor in competitors:
            competitor.kill()
    print(f"\nratio pipeline / in-process over {len(ratios)} pairs: median {statistics.median(ratios):.3f} "
          f"(each: {', '.join(f'{r:.3f}' for r in ratios)})")
    for mode in MODES:
        runs = [r for r in rows if r["mode"] == mode]
        evals = ", ".join(f"{r['final_eval']:.3f}" for r in runs)
        print(f"{mode:<10} wall median {statistics.median(r['wall_s'] for r in runs):6.1f} s; final eval {evals}; "
              f"updates {sorted({r['updates'] for r in runs})}")


if __name__ == "__main__":
    main()
