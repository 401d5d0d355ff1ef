"""Two machines on one link, measured: the robot side and the learner side in two network namespaces
joined by a veth pair (test/helpers/netns.py, started with the README's two-machine commands), the
actor free-running on the toy task. Reports the training transitions per second reaching the learner
while the link is clean and under random packet loss each way, the weights versions the actor got in
each phase, and a cut link's recovery (by default longer than Fast DDS's 20 s participant lease, so
the two sides forget each other and must rediscover), checking every transition arrived once.
Needs root. Run by hand:

    ./kuavo run python bench/two_machines.py [--phase-s 15] [--loss 5 20 40] [--cut-s 30]
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test"))

from helpers.netns import (TwoHosts, TwoMachineRun, longest_stall_s, loss_phases, rate_between,  # noqa: E402
                           unavailable, versions_between)
from helpers.pipeline import wait_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase-s", type=float, default=15.0, help="seconds per clean / lossy phase")
    parser.add_argument("--loss", type=int, nargs="+", default=[5, 20, 40], help="packet loss percentages")
    parser.add_argument("--cut-s", type=float, default=30.0, help="how long the link is cut")
    parser.add_argument("--backend", default="sb3_sac")
    args = parser.parse_args()
    if reason := unavailable():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 1
    phases_s = args.phase_s * (1 + len(args.loss)) + args.cut_s
    overrides = ["env.action_dim=2", "env.target=0.5", f"algo.backend={args.backend}", "algo.learning_starts=200",
                 "actor.sync_with_learner=false", "actor.eval_every_episodes=0", "actor.final_eval_episodes=0",
                 f"run.total_env_steps={int(150 * (phases_s + 20))}", "learner.publish_weights_every_updates=20"]
    with tempfile.TemporaryDirectory() as tmp:
        hosts = TwoHosts(Path(tmp))
        try:
            run = TwoMachineRun(hosts, overrides, status_probe=True)
            learner = lambda: run.statuses("learner")  # noqa: E731
            wait_for(lambda: learner() and learner()[-1]["env_steps"] >= 400, 180, "the learner's first transitions")
            print(f"{1 + len(args.loss)} phases of {args.phase_s:.0f} s, then a {args.cut_s:.0f} s cut",
                  file=sys.stderr)
            phases = loss_phases(hosts, [0, *args.loss], args.phase_s)
            hosts.cut()
            time.sleep(args.cut_s)
            hosts.restore()
            run.wait(900)
            learner_statuses, actor_statuses = learner(), run.statuses("actor")
            robot_log, learner_log = run.output("robot"), run.output("workstation")
            from kuavo_rl.checkpoint import load_latest
            state = load_latest(run.learner_dir() / "checkpoints")
            actor = run.actor_summary()
        finally:
            hosts.close()
    print(f"\n| link ({args.backend}, toy 2-dim, actor free-running) | transitions/s at the learner | "
          f"longest stall (s) | weights versions received |\n|---|---|---|---|")
    for name, span in phases.items():
        rate, versions = rate_between(learner_statuses, *span), len(versions_between(actor_statuses, *span))
        print(f"| {name} | {rate:.0f} | {longest_stall_s(learner_statuses, *span):.1f} | {versions} |")
    restored = re.findall(r"link to the learner restored after ([\d.]+) s", robot_log)
    learner_restored = re.findall(r"link to actor actor0 restored after ([\d.]+) s", learner_log)
    stored = len(set(state["buffers"]["online"]["sequences"].tolist()))
    print(f"\ncut {args.cut_s:.0f} s: the actor logged the learner link restored after {restored} s, the learner "
          f"after {learner_restored} s; the learner holds {stored} distinct transitions of the {actor['env_steps']} "
          f"the actor made ({state['counters']['env_steps']} counted; exactly once: "
          f"{stored == actor['env_steps'] == state['counters']['env_steps']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
