"""Is the box lift solvable through the real interfaces? ScriptedBoxLift plays the policy through the
Kuavo bridge for N episodes: random hand start poses, a different randomised box every episode
(position, yaw, mass, friction: the simulator's defaults), success by the bridge's own judge.

--link inprocess: the bridge over SimLink in this process, stepped through the env protocol core.
--link ros2: the kuavo_sim node and the env node as processes over DDS; this process is the actor
(signed ActionCommands). Run by hand:

    ./kuavo run python bench/kuavo_scripted_lift.py [--link inprocess|ros2] [--episodes 40] [--out result.yaml]
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))  # the episode loop and the DDS actor: test/helpers/kuavo.py

from helpers.kuavo import (CONFIG, DdsScriptedLift, ScriptedLiftPlayer, run_inprocess,  # noqa: E402
                           summary)

from kuavo_rl.kuavo.scripted import controller_for  # noqa: E402
from kuavo_rl.progress import ProgressLine  # noqa: E402


def progress_reporter(episodes: int, started: float, quiet: bool):
    line = ProgressLine(episodes, "scripted lift episodes", period_s=0.0, enabled=not quiet)

    def report(player: ScriptedLiftPlayer) -> None:
        last = player.results[-1]
        steps_per_s = player.env_steps / max(time.perf_counter() - started, 1e-9)
        line.update(len(player.results), f"{player.successes} succeeded, {steps_per_s:.0f} env steps/s; "
                                         f"last: {'success' if last.success else 'FAILED'} at step {last.steps} "
                                         f"({last.phase}, box lifted {100 * last.lift_m:.1f} cm)")
    return report


def run_inprocess_link(args, player: ScriptedLiftPlayer) -> tuple[float, dict]:
    from kuavo_rl.config import load_config
    from kuavo_rl.envs import make_env
    cfg = load_config(str(CONFIG), [*args.set, "env.kuavo.link=inprocess"], pipeline=True)
    env = make_env(cfg.env, seed=args.seed)
    started = time.perf_counter()
    try:
        holds = run_inprocess(env, player, args.episodes, args.seed,
                              progress_reporter(args.episodes, started, args.quiet))
    finally:
        env.close()
    return time.perf_counter() - started, {"holds": holds}  # resets that did not settle (retried)


def run_ros2_link(args, player: ScriptedLiftPlayer) -> tuple[float, dict]:
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))  # the nodes inherit it
    import rclpy
    run_dir = Path(args.run_dir or tempfile.mkdtemp(prefix="kuavo_scripted_lift_"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(os.environ["ROS_DOMAIN_ID"]))
    lift = DdsScriptedLift(context, run_dir, player, [f"run.seed={args.seed}", *args.set])
    ok = False
    try:
        started = time.perf_counter()
        lift.run(args.episodes, args.timeout, progress_reporter(args.episodes, started, args.quiet))
        seconds = time.perf_counter() - started  # from the nodes' start: includes discovery and the first reset
        ok = True
    finally:
        codes = lift.close()
        context.try_shutdown()
        if ok and not args.run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
        elif not ok:
            print(f"node logs: {run_dir / 'logs'}", file=sys.stderr)
    return seconds, {"node_exit_codes": codes}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--link", choices=["inprocess", "ros2"], default="inprocess")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="run.seed: the first reset's seed (scenes and start poses)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override on top of config/kuavo_sim_box_lift.yaml (repeatable)")
    parser.add_argument("--timeout", type=float, default=900.0, help="ros2: give up after this many seconds")
    parser.add_argument("--run-dir", help="ros2: keep the nodes' parameters and logs here (default: a temp dir, "
                                          "removed after a clean run)")
    parser.add_argument("--out", help="write the result here (.json, else YAML)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args()
    from kuavo_rl.config import load_config
    player = ScriptedLiftPlayer(controller_for(load_config(str(CONFIG), args.set).env.kuavo))
    seconds, extra = (run_inprocess_link if args.link == "inprocess" else run_ros2_link)(args, player)
    result = {"link": args.link, "seed": args.seed, "overrides": args.set,
              **summary(player.results, player.env_steps, seconds), **extra,
              "failed_episodes": [r.as_dict() for r in player.results if not r.success]}
    mean_steps = result["mean_steps_to_success"]
    print(f"{args.link}: {result['successes']}/{result['episodes']} succeeded ({100 * result['success_rate']:.1f}%), "
          f"mean steps to success {'-' if mean_steps is None else f'{mean_steps:.1f}'}, "
          f"{result['env_steps_per_s']:.1f} env steps/s ({result['env_steps']} steps in {seconds:.1f} s, resets included)")
    for failed in result["failed_episodes"]:
        print(f"  episode {failed['episode_id']}: {failed}")
    if args.out:
        text = json.dumps(result, indent=2) if args.out.endswith(".json") else yaml.safe_dump(result, sort_keys=False)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
