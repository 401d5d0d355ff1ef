"""Does the ROS 2 pipeline train like the in-process reference? (The seed's question: is the
pipeline fine, or is it the reward/hyperparameters?)

The same configuration is trained N times in-process (`inprocess.train_inprocess`) and N times
through the pipeline (`supervisor.run_pipeline`: env node, actor, learner over DDS), each run in its
own spawned process; every pipeline run gets its own random ROS_DOMAIN_ID so concurrent runs never
cross-talk. Compared per run, on the shaped return both sides log:
- the final evaluation return (mean of the final evaluation episodes), and
- the area under the evaluation curve (mean evaluation return over the run).
Both are also expressed as a task score, (R - R_random) / (R_optimal - R_random): 0 = uniform-random
policy, 1 = optimal (toy task), so a difference reads as a share of the learnable range.

Statistics: Welch's two-sided t-test (unequal variances; scipy.stats.ttest_ind with
equal_var=False) gives the p-value; the effect size is Hedges' g (pooled-SD standardised mean
difference, small-sample corrected).

Decision rule ("disagree" if either holds, for the final return or the AUC):
1. material difference: |delta score| > MARGIN (0.10 for the final return, 0.15 for the AUC, whose
   early part depends more on when weights reach the actor), whatever the p-value;
2. significant and not negligible: Welch p < 0.05 and |delta score| > MARGIN / 2.
Why not the t-test alone: with 3 (or 2) seeds per side it has little power, so "not significant" is
no evidence of agreement, and converged runs have so little spread that a trivial offset can be
"significant". The margin is an equivalence criterion in units of the task's learnable range.

Fault injection for testing: with `fault="reward_sign"` the pipeline processes get the environment
variable KUAVO_RL_FAULT=reward_sign, which the env node honours by negating the reward terms it
publishes; the check must then say "disagree".
"""
from __future__ import annotations

import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from kuavo_rl.config import load_config
from kuavo_rl.diagnostics.pool import TaskOutcome, run_in_pool
from kuavo_rl.metrics import normalised_auc, reference_returns, score_span

FINAL_MARGIN = 0.10
AUC_MARGIN = 0.15
ALPHA = 0.05


# ---- statistics --------------------------------------------------------------------------------
def welch_t_test(a, b) -> dict:
    """Two-sided Welch t-test: {'t', 'df', 'p'}. Fewer than 2 values on a side: all NaN. No spread on
    either side (scipy gives NaN there): p = 0 if the means differ, else 1."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan}
    if a.var(ddof=1) / na + b.var(ddof=1) / nb == 0:
        diff = a.mean() - b.mean()
        return {"t": math.inf if diff else 0.0, "df": math.nan, "p": 0.0 if diff else 1.0}
    from scipy.stats import ttest_ind
    result = ttest_ind(a, b, equal_var=False)
    return {"t": float(result.statistic), "df": float(result.df), "p": float(result.pvalue)}


def hedges_g(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    diff = a.mean() - b.mean()
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / pooled * (1 - 3 / (4 * (na + nb) - 9)))


# ---- runs --------------------------------------------------------------------------------------
def _run_task(task: dict) -> str:
    """One run in a fresh pool process. Pipeline runs get their own DDS domain (and the fault, if any).
    done.yaml is written last; a run that raises has none (the pool reports its traceback)."""
    run_dir = Path(task["run_dir"])
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    overrides = list(task["overrides"]) + [f"run.seed={task['seed']}"]
    started = time.monotonic()
    if task["side"] == "inprocess":
        from kuavo_rl.inprocess import train_inprocess
        cfg = load_config(task["config_file"], overrides, pipeline=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        train_inprocess(cfg, run_dir, quiet=True)
    else:
        os.environ["ROS_DOMAIN_ID"] = str(task["domain_id"])
        if task.get("fault"):
            os.environ["KUAVO_RL_FAULT"] = task["fault"]
        else:
            os.environ.pop("KUAVO_RL_FAULT", None)
        from kuavo_rl.supervisor import run_pipeline
        run_pipeline(run_dir, task["config_file"], overrides, timeout_s=task["timeout_s"], quiet=True)
    (run_dir / "done.yaml").write_text(yaml.safe_dump(
        {"side": task["side"], "seed": task["seed"], "fault": task.get("fault"),
         "domain_id": task.get("domain_id"), "wall_time_s": round(time.monotonic() - started, 1)}))
    return task["run_dir"]


def _curve(run_dir: Path, final_episodes: int) -> tuple[np.ndarray, np.ndarray, float]:
    from kuavo_rl.run_log import read_rows
    rows = [r for r in read_rows(run_dir / "episodes.csv") if r.get("evaluation")]
    if not rows:
        raise RuntimeError(f"{run_dir}: no evaluation episode logged")
    steps = np.array([r["env_steps"] for r in rows])
    returns = np.array([r["return"] for r in rows])
    final = float(returns[-max(final_episodes, 1):].mean())
    return steps, returns, final


def compare_sides(inproc: dict[str, list[float]], pipe: dict[str, list[float]], span: float) -> dict:
    out = {}
    for measure, margin in (("final", FINAL_MARGIN), ("auc", AUC_MARGIN)):
        a, b = np.array(inproc[measure]), np.array(pipe[measure])
        test = welch_t_test(a, b)
        delta_score = (b.mean() - a.mean()) / span
        material = abs(delta_score) > margin
        significant = (test["p"] == test["p"]) and test["p"] < ALPHA and abs(delta_score) > margin / 2
        out[measure] = {"inprocess_mean": float(a.mean()), "inprocess_std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                        "pipeline_mean": float(b.mean()), "pipeline_std": float(b.std(ddof=1)) if len(b) > 1 else 0.0,
                        "delta_score": float(delta_score), "margin": margin, "welch": test,
                        "hedges_g": hedges_g(b, a), "material": bool(material), "significant": bool(significant),
                        "agree": not (material or significant)}
    return out


def run_check(config_file: str | None = None, overrides: list[str] = (), seeds: int = 3, out_dir=None,
              jobs: int | None = None, fault: str | None = None, timeout_s: float = 1800.0, quiet: bool = False,
              inprocess_dir=None) -> dict:
    """Train both sides, compare, write pipeline_check.md + pipeline_check.png; returns the result.
    In-process runs already finished in `inprocess_dir` (done.yaml) are reused."""
    from kuavo_rl.launch_plan import default_config_path
    config_file = config_file or default_config_path()
    overrides = list(overrides)
    cfg = load_config(config_file, overrides, pipeline=True)  # ConfigError before anything starts
    out_dir = Path(out_dir or f"runs/pipeline_check/{time.strftime('%Y%m%d-%H%M%S')}")
    inprocess_dir = Path(inprocess_dir or out_dir / "inprocess")
    out_dir.mkdir(parents=True, exist_ok=True)
    domains = random.sample(range(1, 200), seeds)
    tasks = []
    for k in range(seeds):
        run_dir = inprocess_dir / f"seed{k}"
        if not (run_dir / "done.yaml").is_file():
            tasks.append({"side": "inprocess", "seed": k, "run_dir": str(run_dir)})
        tasks.append({"side": "pipeline", "seed": k, "run_dir": str(out_dir / "pipeline" / f"seed{k}"),
                      "domain_id": domains[k], "fault": fault, "timeout_s": timeout_s})
    for task in tasks:
        task.update(config_file=config_file, overrides=overrides)
    tasks.sort(key=lambda t: t["side"] != "pipeline")  # the slower side first
    started = time.monotonic()
    errors = {}

    def finished(outcome: TaskOutcome) -> str:
        run_dir = outcome.task["run_dir"]
        if outcome.error:
            errors[run_dir] = outcome.error
        return f"finished {run_dir}" + (" (FAILED)" if outcome.error else "")

    run_in_pool(_run_task, tasks, jobs=jobs, label="pipeline-check", on_done=finished, quiet=quiet)
    if errors:
        raise RuntimeError("pipeline-check runs failed:\n" + "\n".join(f"{k}:\n{v}" for k, v in errors.items()))
    sides = {"inprocess": [inprocess_dir / f"seed{k}" for k in range(seeds)],
             "pipeline": [out_dir / "pipeline" / f"seed{k}" for k in range(seeds)]}
    curves = {side: [_curve(d, cfg.actor.final_eval_episodes) for d in dirs] for side, dirs in sides.items()}
    values = {side: {"final": [c[2] for c in cs], "auc": [normalised_auc(c[0], c[1]) for c in cs]}
              for side, cs in curves.items()}
    random_return, optimum = reference_returns(cfg)  # under the shaping both sides trained and logged
    span = score_span(random_return, optimum) or abs(random_return) or 1.0
    stats = compare_sides(values["inprocess"], values["pipeline"], span)
    verdict = "agree" if all(s["agree"] for s in stats.values()) else "disagree"
    png = _plot(out_dir / "pipeline_check.png", curves, random_return, cfg)
    wall = time.monotonic() - started
    markdown = _markdown(cfg, config_file, overrides, seeds, fault, stats, values, verdict, random_return, optimum,
                         span, wall, png)
    report = out_dir / "pipeline_check.md"
    report.write_text(markdown)
    result = {"verdict": verdict, "stats": stats, "values": values, "random_return": random_return,
              "optimal_return": optimum, "wall_time_s": round(wall, 1), "fault": fault}
    (out_dir / "pipeline_check.yaml").write_text(yaml.safe_dump(_plain(result), sort_keys=False))
    result.update(report=report, markdown=markdown, png=png)
    return result


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _plot(path: Path, curves, random_return: float, cfg) -> Path:
    from kuavo_rl.plots import plt  # the headless backend
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = {"inprocess": "tab:blue", "pipeline": "tab:orange"}
    for side, runs in curves.items():
        for i, (steps, returns, _) in enumerate(runs):
            ax.plot(steps, returns, "-o", markersize=2.5, color=colours[side], alpha=0.8,
                    label=f"{side} ({len(runs)} seeds)" if i == 0 else None)
    ax.axhline(random_return, color="grey", linestyle="--", label=f"random policy ({random_return:.1f})")
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"pipeline check: {cfg.algo.backend}, dim {cfg.env.action_dim}, reward {cfg.reward.type}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _markdown(cfg, config_file, overrides, seeds, fault, stats, values, verdict, random_return, optimum, span,
              wall, png) -> str:
    lines = [f"# Pipeline check: **{verdict}**", "",
             f"Config `{config_file}` with overrides {list(overrides) or 'none'}: {cfg.algo.backend}, action dim "
             f"{cfg.env.action_dim}, target {cfg.env.target:g}, reward {cfg.reward.type} (shift {cfg.reward.shift:g}, "
             f"scale {cfg.reward.scale:g}), {cfg.run.total_env_steps} env steps; {seeds} seeds per side; wall time "
             f"{wall / 60:.1f} min." + (f" **Injected fault: KUAVO_RL_FAULT={fault} on the pipeline side.**" if fault else ""),
             "", f"Random policy return {random_return:.2f}, optimal {optimum if optimum is None else f'{optimum:.2f}'}; "
             f"score deltas are in units of that range ({span:.2f}).", "",
             "| measure | in-process (mean ± std) | pipeline (mean ± std) | delta (score units) | margin | Welch t, df, p "
             "| Hedges' g | agree |", "|---|---|---|---|---|---|---|---|"]
    for name, s in stats.items():
        w = s["welch"]
        lines.append(f"| {'final eval return' if name == 'final' else 'AUC (mean eval return)'} | "
                     f"{s['inprocess_mean']:.2f} ± {s['inprocess_std']:.2f} | {s['pipeline_mean']:.2f} ± "
                     f"{s['pipeline_std']:.2f} | {s['delta_score']:+.3f} | {s['margin']:.2f} | "
                     f"{w['t']:.2f}, {w['df']:.1f}, {w['p']:.3g} | {s['hedges_g']:.2f} | {'yes' if s['agree'] else 'no'} |")
    lines += ["", "Per-seed values: " + "; ".join(f"{side} {m}: " + ", ".join(f"{v:.2f}" for v in vals)
                                                  for side, d in values.items() for m, vals in d.items()), "",
              "Rule: **disagree** if, for the final return or the AUC, |delta score| exceeds the margin (a material "
              f"difference), or Welch's two-sided t-test gives p < {ALPHA} with |delta score| above half the margin. "
              "With few seeds the t-test alone has too little power to show agreement, hence the margin "
              "(an equivalence criterion in units of the learnable range: score 0 = random policy, 1 = optimal).",
              "", f"![curves]({Path(png).name})", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m kuavo_rl.diagnostics.pipeline_check [overrides...]
    print(run_check(overrides=sys.argv[1:], seeds=2)["markdown"])
