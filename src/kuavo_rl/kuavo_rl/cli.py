"""`kuavo-rl`: train through the ROS 2 pipeline (default) or in-process, and run the diagnostics."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

from kuavo_rl.config import VR_SOURCES, ConfigError, load_config
from kuavo_rl.diagnostics.cli import add_subcommands
from kuavo_rl.envs import ENVS, env_spec
from kuavo_rl.launch_plan import (SIDES, default_config_path, discovery_environment, needs_simulator_node,
                                  side_overrides, vr_overrides)
from kuavo_rl.reward import RewardShaper, lint_config


def cmd_train(args) -> int:
    if args.config and args.env:
        raise ConfigError("give either --env (its default experiment file) or --config, not both")
    if args.side != "all" and args.inprocess:
        raise ConfigError("--side runs one machine's part of the ROS 2 pipeline; it cannot be --inprocess")
    if args.side == "learner" and args.vr:
        raise ConfigError("--vr belongs to the robot side (the headset is at the robot), not --side learner")
    config_file = args.config or default_config_path(args.env or "toy")
    overrides = list(args.set) + side_overrides(args.side)
    if args.vr:
        overrides += vr_overrides(args.vr_source, args.vr_replay_file)
    cfg = load_config(config_file, overrides, pipeline=not args.inprocess)
    if cfg.learner.device.startswith("cuda") and args.side != "robot":  # refused here, not by a node that has started
        from kuavo_rl.algos.base import resolve_device
        resolve_device(cfg.learner.device)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif "run.run_dir" in cfg.explicit:
        run_dir = Path(cfg.run.run_dir)
    else:
        run_dir = Path(f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{cfg.algo.backend}-dim{cfg.env.action_dim}")
    cfg.run.run_dir = str(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    shaper = RewardShaper(cfg.reward, env_spec(cfg.env).reward_term_names)
    warnings = [str(w) for w in lint_config(cfg.reward, cfg.algo, cfg.env.action_dim, shaper)]
    for warning in warnings:
        print(f"[kuavo-rl] reward lint: {warning}", file=sys.stderr)
    mode = "in-process" if args.inprocess else "through the ROS 2 pipeline (env node, actor, learner over DDS)"
    if args.side != "all":
        discovery = discovery_environment(args.side)["ROS_AUTOMATIC_DISCOVERY_RANGE"]
        # What the other side must match: the domain id and a discovery range that reaches it.
        mode = (f"the {args.side} side of a two-machine run (ROS_DOMAIN_ID="
                f"{os.environ.get('ROS_DOMAIN_ID', '0 (unset)')}, ROS_AUTOMATIC_DISCOVERY_RANGE={discovery})")
        if discovery == "LOCALHOST":
            print("[kuavo-rl] warning: ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST: the other machine cannot discover "
                  "this one; export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET on both", file=sys.stderr)
    print(f"[kuavo-rl] training {mode}; config {config_file or '(defaults)'}; run dir {run_dir}", file=sys.stderr)
    started = time.monotonic()
    if args.inprocess:
        from kuavo_rl.inprocess import train_inprocess
        train_inprocess(cfg, run_dir, quiet=args.quiet)
    else:
        from kuavo_rl.supervisor import PipelineFailed, run_pipeline
        try:
            run_pipeline(run_dir, config_file, overrides, timeout_s=args.timeout, quiet=args.quiet, vr=args.vr,
                         simulator=needs_simulator_node(cfg), side=args.side, key_file=cfg.run.key_file)
        except PipelineFailed as error:
            print(f"[kuavo-rl] pipeline failed: {error}", file=sys.stderr)
            return 1
    if args.side == "robot":  # the learner side has the episodes, the learning curve and the summary
        from kuavo_rl.summary import summarise_robot_side
        print(f"\n{summarise_robot_side(run_dir)}")
        return 0
    from kuavo_rl.summary import summarise_run
    result = summarise_run(run_dir, cfg, "in-process" if args.inprocess else "pipeline",
                           time.monotonic() - started, warnings)
    print(f"\n{result['paragraph']}\nLearning curve: {run_dir / 'learning_curve.png'}; "
          f"summary: {run_dir / 'summary.md'}; TensorBoard: tensorboard --logdir {run_dir / 'tensorboard'}")
    return 0


def cmd_record(args) -> int:
    from kuavo_rl.record import SOURCES, print_result, record
    if args.config and args.env:
        raise ConfigError("give either --env (its default experiment file) or --config, not both")
    if args.source not in SOURCES:
        raise ConfigError(f"--source must be one of {', '.join(SOURCES)}")
    cfg = load_config(args.config or default_config_path(args.env or "toy"), args.set)
    try:
        result = record(cfg, args.source, args.episodes, args.out, noise=args.noise, policy_run=args.policy,
                        overwrite=args.overwrite, quiet=args.quiet)
    except ValueError as error:  # DatasetError: e.g. the output exists
        print(f"kuavo-rl record: {error}", file=sys.stderr)
        return 2
    print_result(result)
    print(result.root)
    return 0


def cmd_export(args) -> int:
    from kuavo_rl.export import export_pretrained
    out = export_pretrained(args.run_dir, args.out)
    print(f"[kuavo-rl export] {args.run_dir} -> {out} (lerobot: SACPolicy.from_pretrained('{out}'))", file=sys.stderr)
    print(out)
    return 0


def cmd_label(args) -> int:
    from kuavo_rl.auth import key_path
    key_file = [f"run.key_file={args.key_file}"] if args.key_file else []
    cfg = load_config(None, [f"run.run_dir={args.run_dir}", *key_file])
    key = key_path(cfg.run.run_dir, cfg.run.key_file)
    if not key.is_file():  # a new key would sign labels that the run's actor refuses
        raise ConfigError(f"no run key at {key}: give the running training's --run-dir (or --key-file)")
    from kuavo_rl.nodes.label_keyboard import run
    return run(cfg)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kuavo-rl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train (default: the ROS 2 pipeline on the toy task)")
    train.add_argument("--config", help=f"experiment YAML (default {default_config_path('toy')})")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a configuration key, e.g. --set algo.lr=1e-3 (repeatable)")
    train.add_argument("--env", choices=sorted(ENVS), default=None,
                       help="train this env with its default experiment file (default toy): "
                            + "; ".join(f"{e.name}: {e.description}" for e in ENVS.values()))
    train.add_argument("--vr", action="store_true", help="also run the VR teleop node (human takeovers)")
    train.add_argument("--vr-source", default="openxr", choices=VR_SOURCES,
                       help="with --vr: a headset through OpenXR, a recording, or none (sets vr.source)")
    train.add_argument("--vr-replay-file", default="", help="with --vr: recorded controller stream to replay (loops)")
    train.add_argument("--run-dir", help="where logs, checkpoints, plots go (default runs/<time>-...)")
    train.add_argument("--inprocess", action="store_true", help="no ROS: same env/actor/learner code in one loop")
    train.add_argument("--side", choices=SIDES, default="all",
                       help="two machines: robot (env bridge, actor, --vr; needs the learner side's run key) or "
                            "learner (creates the run key; ends when the actors have finished); all = one machine")
    train.add_argument("--timeout", type=float, default=3600.0, help="pipeline wall-time limit in seconds")
    train.add_argument("--quiet", action="store_true", help="no progress line")
    train.set_defaults(func=cmd_train)
    rec = sub.add_parser("record", help="record demonstrations (a scripted expert or a trained policy) as a "
                                        "LeRobotDataset; train from them with demos.datasets")
    rec.add_argument("--env", choices=sorted(ENVS), default=None, help="record this env (default toy)")
    rec.add_argument("--config", help="experiment YAML whose env is recorded (instead of --env)")
    rec.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override a configuration key, e.g. --set run.seed=3 (repeatable)")
    rec.add_argument("--source", default="scripted", help="scripted (the env's expert, with --noise) | policy")
    rec.add_argument("--policy", help="with --source policy: a training run directory (its latest checkpoint)")
    rec.add_argument("--episodes", type=int, default=30)
    rec.add_argument("--noise", type=float, default=0.1, help="scripted: std of the noise added to each action value")
    rec.add_argument("--out", required=True, help="the dataset's local root directory (created)")
    rec.add_argument("--overwrite", action="store_true", help="replace an existing dataset at --out")
    rec.add_argument("--quiet", action="store_true", help="no progress line")
    rec.set_defaults(func=cmd_record)
    export = sub.add_parser("export", help="a trained lerobot_sac policy in lerobot's pretrained format "
                                           "(SACPolicy.from_pretrained), with its normalisation")
    export.add_argument("--run-dir", required=True, help="the training run (its latest checkpoint)")
    export.add_argument("--out", required=True, help="directory to write config.json, model.safetensors, processors")
    export.set_defaults(func=cmd_export)
    label = sub.add_parser("label", help="label the running episode success or failure from the keyboard "
                                         "(the headset's Y/X buttons without a headset)")
    label.add_argument("--run-dir", required=True, help="the running training's run directory (its run key)")
    label.add_argument("--key-file", default="", help="the run key, when it is not <run-dir>/run.key")
    label.set_defaults(func=cmd_label)
    add_subcommands(sub)
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
