"""End-of-run summary: learning-curve PNG, one paragraph of Markdown, and result.yaml."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from kuavo_rl.config import ExperimentConfig
from kuavo_rl.metrics import random_policy_return
from kuavo_rl.plots import plot_learning_curve
from kuavo_rl.run_log import episode_curve, read_rows


def summarise_run(run_dir: str | Path, cfg: ExperimentConfig, mode: str, wall_time_s: float,
                  warnings: list[str] = ()) -> dict:
    run_dir = Path(run_dir)
    evaluation = episode_curve(run_dir, evaluation=True)
    train = episode_curve(run_dir, evaluation=False)
    final = evaluation[1][-cfg.actor.final_eval_episodes:] if cfg.actor.final_eval_episodes else evaluation[1][-1:]
    updates = read_rows(run_dir / "updates.csv")
    training_rows = [r for r in read_rows(run_dir / "episodes.csv") if not r["evaluation"]]
    takeovers = int(sum(r["interventions"] for r in training_rows))
    takeover_share = takeovers / max(sum(r["length"] for r in training_rows), 1)
    random_return = random_policy_return(cfg)
    title = (f"{cfg.env.name} dim {cfg.env.action_dim}, reward {cfg.reward.type}, {cfg.algo.backend} ({mode})")
    plot_learning_curve(run_dir / "learning_curve.png", train, evaluation, title, random_return)
    result = {
        "mode": mode, "backend": cfg.algo.backend, "env": cfg.env.name, "action_dim": cfg.env.action_dim,
        "reward": cfg.reward.type, "env_steps": int(train[0][-1]) if train[0] else 0,
        "updates": int(updates[-1]["updates"]) if updates else 0,
        "final_eval_return": float(np.mean(final)) if final else None,
        "first_eval_return": float(evaluation[1][0]) if evaluation[1] else None,
        "random_policy_return": random_return, "intervention_transitions": takeovers, "wall_time_s": round(wall_time_s, 1), "warnings": list(warnings),
    }
    (run_dir / "result.yaml").write_text(yaml.safe_dump(result, sort_keys=False))
    final_text = f"{result['final_eval_return']:.2f}" if final else "n/a (no evaluation episode finished)"
    quirks = cfg.quirks_summary()
    paragraph = (
        f"Trained {cfg.algo.backend} on the {cfg.env.name} task (action dim {cfg.env.action_dim}, reward "
        f"{cfg.reward.type}, shift {cfg.reward.shift:g}, scale {cfg.reward.scale:g}) {mode} for "
        f"{result['env_steps']} env steps and {result['updates']} updates in {wall_time_s / 60:.1f} min. "
        f"The deterministic evaluation return went from {result['first_eval_return']:.2f} (first evaluation) to "
        f"{final_text} (final, mean of {len(final)} episodes); a random policy scores {random_return:.2f}. "
        + (f"Human takeovers: {takeovers} transitions ({100 * takeover_share:.0f}% of training steps). "
           if takeovers else "")
        + (f"Warnings: {'; '.join(warnings)}." if warnings else "No reward-lint warnings.")
        + (f" {quirks}." if quirks else "")
        if evaluation[1] else f"No evaluation episode finished in {result['env_steps']} env steps.")
    (run_dir / "summary.md").write_text(f"# Run summary\n\n{paragraph}\n\n![learning curve](learning_curve.png)\n")
    result["paragraph"] = paragraph
    return result


def summarise_robot_side(run_dir: str | Path) -> str:
    """The robot side of two machines: what its actor did (the learner side holds the learning curve)."""
    actor = yaml.safe_load((Path(run_dir) / "actor_summary.yaml").read_text())
    outages = actor.get("learner_link_outages_s", [])
    links = (f"{len(outages)} learner-link outage(s), the longest {max(outages):.1f} s" if outages
             else "no learner-link outage")
    finals = [round(r, 3) for r in actor["final_eval_raw_returns"]]
    return (f"Robot side {'finished' if actor['finished'] else 'stopped before finishing'}: {actor['env_steps']} env "
            f"steps, {actor['transitions_sent']} transitions sent, final evaluation returns {finals}, {links}. "
            f"The learning curve and summary are written by the learner side.")
