"""`kuavo-rl`: train through the ROS 2 pipeline (default) or in-process, and run the diagnostics."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from kuavo_rl.config import ConfigError, load_config
from kuavo_rl.reward import RewardShaper, lint_config

DEFAULT_CONFIGS = {"toy": "config/toy_mse.yaml", "sim": "config/sim_pick_lift.yaml"}
DEFAULT_CONFIG = DEFAULT_CONFIGS["toy"]


def default_config_path(env: str = "toy") -> str | None:
    """The env's default experiment file in the checkout, else in the installed share/kuavo_rl."""
    relative = DEFAULT_CONFIGS[env]
    if Path(relative).is_file():
        return relative
    try:
        from ament_index_python.packages import get_package_share_directory
        candidate = Path(get_package_share_directory("kuavo_rl")) / relative
        return str(candidate) if candidate.is_file() else None
    except Exception:
        return None


def cmd_train(args) -> int:
    config_file = args.config or default_config_path(args.env)
    cfg = load_config(config_file, args.set, pipeline=not args.inprocess)
    run_dir = Path(args.run_dir or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{cfg.algo.backend}-dim{cfg.env.action_dim}")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    from kuavo_rl.envs import make_env
    env = make_env(cfg.env)
    warnings = [str(w) for w in lint_config(cfg.reward, cfg.algo, cfg.env.action_dim,
                                            RewardShaper(cfg.reward, env.reward_term_names))]
    for warning in warnings:
        print(f"[kuavo-rl] reward lint: {warning}", file=sys.stderr)
    mode = "in-process" if args.inprocess else "through the ROS 2 pipeline (env node, actor, learner over DDS)"
    print(f"[kuavo-rl] training {mode}; config {config_file or '(defaults)'}; run dir {run_dir}", file=sys.stderr)
    started = time.monotonic()
    if args.inprocess:
        from kuavo_rl.inprocess import train_inprocess
        train_inprocess(cfg, run_dir, quiet=args.quiet)
    else:
        from kuavo_rl.supervisor import PipelineFailed, run_pipeline
        from kuavo_rl.supervisor import VR_MAPPINGS
        vr = None
        if args.vr:
            vr = {"source": args.vr_source, "replay_file": str(Path(args.vr_replay_file).resolve()) if args.vr_replay_file else "",
                  "replay_loop": bool(args.vr_replay_file), "mapping": VR_MAPPINGS[cfg.env.name],
                  "action_dim": cfg.env.action_dim if cfg.env.name == "toy" else 0}
        try:
            run_pipeline(run_dir, config_file, args.set, timeout_s=args.timeout, quiet=args.quiet, vr=vr)
        except PipelineFailed as error:
            print(f"[kuavo-rl] pipeline failed: {error}", file=sys.stderr)
            return 1
    from kuavo_rl.summary import summarise_run
    result = summarise_run(run_dir, cfg, "in-process" if args.inprocess else "pipeline",
                           time.monotonic() - started, warnings)
    print(f"\n{result['paragraph']}\nLearning curve: {run_dir / 'learning_curve.png'}; "
          f"summary: {run_dir / 'summary.md'}; TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kuavo-rl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train (default: the ROS 2 pipeline on the toy task)")
    train.add_argument("--config", help=f"experiment YAML (default {DEFAULT_CONFIG})")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a configuration key, e.g. --set algo.lr=1e-3 (repeatable)")
    train.add_argument("--env", choices=sorted(DEFAULT_CONFIGS), default="toy",
                       help="which default config to use when --config is not given (toy task or pick-lift sim)")
    train.add_argument("--vr", action="store_true", help="also run the VR teleop node (human takeovers)")
    train.add_argument("--vr-source", default="openxr", choices=["openxr", "replay", "none"],
                       help="VR input: a headset through OpenXR, a recording, or none")
    train.add_argument("--vr-replay-file", default="", help="recorded controller stream for --vr-source replay")
    train.add_argument("--run-dir", help="where logs, checkpoints, plots go (default runs/<time>-...)")
    train.add_argument("--inprocess", action="store_true", help="no ROS: same env/actor/learner code in one loop")
    train.add_argument("--timeout", type=float, default=3600.0, help="pipeline wall-time limit in seconds")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.set_defaults(func=cmd_train)
    try:
        from kuavo_rl.diagnostics.cli import add_subcommands
        add_subcommands(sub)
    except ImportError:
        pass
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"kuavo-rl: configuration error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
