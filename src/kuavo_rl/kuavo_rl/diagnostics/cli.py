"""`kuavo-rl sweep` and `kuavo-rl pipeline-check` (hooked into kuavo_rl.cli.build_parser)."""
from __future__ import annotations

import sys
from pathlib import Path


def cmd_sweep(args) -> int:
    from kuavo_rl.diagnostics.report import verdict_table, write_report
    from kuavo_rl.diagnostics.sweep import load_sweep, run_sweep
    sweep = load_sweep(args.sweep)  # SweepError (a ConfigError) -> exit code 2 in kuavo_rl.cli.main
    if args.only:
        sweep.study(args.only)
    runs_root = Path(args.runs_root or f"runs/sweeps/{sweep.name}")
    failed = {}
    if not args.report_only:
        try:
            result = run_sweep(sweep, runs_root, jobs=args.jobs, only=args.only, quiet=args.quiet)
        except KeyboardInterrupt:
            print(f"\n[sweep {sweep.name}] interrupted: finished runs keep their done.yaml; rerun the same command "
                  "to run only the missing ones", file=sys.stderr)
            return 130
        failed = result.failed
        print(f"[sweep {sweep.name}] ran {len(result.executed)}, skipped {len(result.skipped)} already done, "
              f"{len(failed)} failed, in {result.wall_time_s:.0f} s", file=sys.stderr)
    report = write_report(sweep, runs_root, only=args.only)
    print(verdict_table(report))
    print(f"Report: {report}")
    if failed:
        print(f"[sweep {sweep.name}] failed runs (rerun the same command to retry them): {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


def cmd_pipeline_check(args) -> int:
    from kuavo_rl.diagnostics.pipeline_check import run_check
    try:
        result = run_check(args.config, args.set, seeds=args.seeds, out_dir=args.out, jobs=args.jobs,
                           fault=args.fault, timeout_s=args.timeout, quiet=args.quiet)
    except RuntimeError as error:  # a run failed (its traceback and node logs are named in the message)
        print(f"kuavo-rl pipeline-check: {error}", file=sys.stderr)
        return 1
    print(result["markdown"])
    print(f"Report: {result['report']}")
    return 0 if result["verdict"] == "agree" else 1


def add_subcommands(sub) -> None:
    sweep = sub.add_parser("sweep", help="run a sweep of in-process diagnostics runs and write its report")
    sweep.add_argument("sweep", help="sweep YAML, e.g. config/sweeps/seed_recipe.yaml")
    sweep.add_argument("--runs-root", help="where run directories and the report go (default runs/sweeps/<name>)")
    sweep.add_argument("--jobs", type=int, default=None, help="parallel runs (default: CPU count)")
    sweep.add_argument("--only", metavar="STUDY", help="run and report only this study")
    sweep.add_argument("--report-only", action="store_true", help="do not run anything; rebuild plots and report")
    sweep.add_argument("--quiet", action="store_true", help="no progress line")
    sweep.set_defaults(func=cmd_sweep)

    check = sub.add_parser("pipeline-check",
                           help="train the same config in-process and through the ROS 2 pipeline; do they agree?")
    check.add_argument("--config", help="experiment YAML (default config/toy_mse.yaml)")
    check.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override (repeatable)")
    check.add_argument("--seeds", type=int, default=3, help="seeds per side (default 3)")
    check.add_argument("--out", help="output directory (default runs/pipeline_check/<time>)")
    check.add_argument("--jobs", type=int, default=None, help="parallel runs (default: CPU count)")
    check.add_argument("--timeout", type=float, default=1800.0, help="wall-time limit per pipeline run (s)")
    check.add_argument("--fault", default=None, help=__import__("argparse").SUPPRESS)  # testing: KUAVO_RL_FAULT
    check.add_argument("--quiet", action="store_true")
    check.set_defaults(func=cmd_pipeline_check)
