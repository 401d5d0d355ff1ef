"""Sweep report: per study a PNG and a Markdown table, and a verdict per seed finding.

Measures (all per run, then mean +- std over the seeds of a configuration):
- **task score** s = (R_raw - R_random) / (R_optimal - R_random), with R_raw the env's own return
  (-sum of mean squared action error on the toy task, whatever the reward shaping), R_random the
  uniform-random policy's raw return and R_optimal = 0. 0 = random policy, 1 = optimal. The score
  compares runs across reward type, shift and scale, which shaped returns cannot.
- **final**: the mean of the final evaluation episodes (shaped return as trained on, and score).
- **AUC**: the area under the evaluation score curve divided by its env-step span (mean score over
  the run): "learns faster" in the seed's words.
- **steps to threshold**: first evaluation at which the score reaches the study's threshold.
- **stability**: std of the evaluation scores in the last 25% of the env steps (incl. final ones).

Verdict rules (a finding is tested only if a study declares `finding:` with its key):
- A comparison of two groups of seeds uses the difference d of their mean AUC (or final score)
  and its standard error SE = sqrt(sA^2/nA + sB^2/nB) (sample std over seeds). The difference is
  *clear* when |d| > max(2 SE, MIN_EFFECT) with MIN_EFFECT = 0.05 score units; otherwise it is
  within seed noise. With 2 seeds SE is itself noisy, hence the floor.
- Each finding is split into sub-claims (listed in the report with their numbers); a comparison
  sub-claim is "reproduced" if its difference is clear in the claimed direction; "not reproduced"
  if it is clear in the opposite direction, or if even d + 2 SE < MIN_EFFECT (an effect of the
  claimed direction and of at least MIN_EFFECT is ruled out: a precise null); otherwise
  "inconclusive" (the interval d +- 2 SE is too wide to decide); "not tested" if the sweep lacks
  its configurations.
- A convergence sub-claim ("X converges") is reproduced if mean - std of the final task score >=
  CONVERGED (0.9); "not reproduced" only if mean + std < 0.9 while a reference configuration (same
  backend, an easier setting) converged within the same budget; otherwise inconclusive, because a
  short budget is no evidence against "converges in the end".
- The finding's verdict: "reproduced" if all tested sub-claims are reproduced, "not reproduced"
  if all are not reproduced, otherwise "inconclusive" (mixed or within noise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from kuavo_rl.diagnostics.sweep import RunSpec, Study, Sweep
from kuavo_rl.metrics import collapse_by_step, normalised_auc, task_score
from kuavo_rl.run_log import read_rows

MIN_EFFECT = 0.05
CONVERGED = 0.9  # "converged" in the seed's sense: task score >= this at the end

FINDINGS = {
    "reward_type": "1. Reward type: SAC is sensitive to reward design; with MSE it converges even at dim 14, "
                   "with the always-positive shaped reward it stalls at dim 6; PPO converges",
    "reward_shift": "2. Reward shift: at dim 6, shaped - 1 (a penalty) learns better than shaped (a bonus), "
                    "for SB3 SAC and SB3 PPO",
    "reward_scale": "3. Reward scale: SB3 SAC (dim 14, MSE) learns faster as the scale grows 1 -> 100 -> 1000; "
                    "SB3 PPO still converges at scale 1000",
    "grad_clip": "4. Gradient clipping: lerobot SAC's grad_clip_norm keeps it from exploiting a large reward scale",
}


@dataclass
class RunMetrics:
    seed: int
    final_return: float
    final_score: float
    auc: float
    steps_to_threshold: float | None
    stability: float
    curve_steps: np.ndarray
    curve_score: np.ndarray
    curve_return: np.ndarray


@dataclass
class ConfigResult:
    slug: str
    label: str
    point: dict
    spec: RunSpec
    runs: list[RunMetrics] = field(default_factory=list)
    missing: int = 0
    warnings: list[str] = field(default_factory=list)

    def values(self, name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in self.runs], float)

    def mean_std(self, name: str) -> tuple[float, float]:
        v = self.values(name)
        if len(v) == 0:
            return math.nan, math.nan
        return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0

    @property
    def cfg(self):
        return self.spec.experiment()


def run_metrics(run_dir: Path, threshold: float) -> RunMetrics | None:
    done_path = run_dir / "done.yaml"
    if not done_path.is_file():
        return None
    done = yaml.safe_load(done_path.read_text())
    rows = [r for r in read_rows(run_dir / "episodes.csv") if r.get("evaluation")]
    if not rows:
        return None
    cfg_final = max(1, int(yaml.safe_load((run_dir / "config.yaml").read_text())["actor"]["final_eval_episodes"]))
    rand, opt = done["random_raw_return"], done["optimal_raw_return"]

    def score(raw):
        return task_score(raw, rand, opt)

    steps = [r["env_steps"] for r in rows]
    xs, ret = collapse_by_step(steps, [r["return"] for r in rows])
    _, sc = collapse_by_step(steps, score([r["raw_return"] for r in rows]))
    final = rows[-cfg_final:]
    auc = normalised_auc(xs, sc)
    reached = [x for x, s in zip(xs, sc) if s >= threshold]
    tail = [s for x, s in zip(steps, score([r["raw_return"] for r in rows])) if x >= 0.75 * max(steps)]
    return RunMetrics(int(done["seed"]), float(np.mean([r["return"] for r in final])),
                      float(np.mean(score([r["raw_return"] for r in final]))), auc,
                      float(reached[0]) if reached else None, float(np.std(tail)) if len(tail) > 1 else 0.0,
                      xs, sc, ret)


def collect(study: Study, runs_root: Path) -> list[ConfigResult]:
    from kuavo_rl.envs import make_env
    from kuavo_rl.reward import RewardShaper, lint_config
    results: dict[str, ConfigResult] = {}
    for spec in study.runs:
        if spec.slug not in results:
            cfg = spec.experiment()
            env = make_env(cfg.env)
            warnings = [w.code for w in lint_config(cfg.reward, cfg.algo, cfg.env.action_dim,
                                                     RewardShaper(cfg.reward, env.reward_term_names))]
            results[spec.slug] = ConfigResult(spec.slug, spec.label, spec.point, spec, warnings=warnings)
        metrics = run_metrics(spec.dir(runs_root), study.threshold)
        if metrics is None:
            results[spec.slug].missing += 1
        else:
            results[spec.slug].runs.append(metrics)
    return list(results.values())


# ---- plots -------------------------------------------------------------------------------------
def _mean_curve(runs: list[RunMetrics], attr: str):
    grid = np.unique(np.concatenate([r.curve_steps for r in runs]))
    ys = np.array([np.interp(grid, r.curve_steps, getattr(r, attr)) for r in runs])
    return grid, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def plot_study(path: Path, study: Study, configs: list[ConfigResult], attr: str, ylabel: str) -> Path:
    from kuavo_rl.plots import plt  # the headless backend
    panels: dict[str, list[ConfigResult]] = {}
    for c in configs:
        key = ", ".join(f"{k}={v}" for k, v in c.point.items() if k != study.compare) or "all"
        panels.setdefault(key, []).append(c)
    n = len(panels)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(5.2 * cols, 8.0), 3.6 * rows + 0.4), squeeze=False)
    for ax, (key, group) in zip(axes.flat, panels.items()):
        for c in group:
            if not c.runs:
                continue
            x, mean, low, high = _mean_curve(c.runs, attr)
            line, = ax.plot(x, mean, "-o", markersize=2.5, label=f"{c.point.get(study.compare, c.label)} (n={len(c.runs)})")
            if len(c.runs) > 1:
                ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
        if attr == "curve_score":
            ax.axhline(study.threshold, color="grey", linestyle=":", linewidth=1)
            ax.axhline(0.0, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title=study.variable, title_fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(f"{study.title} (mean over seeds; band = min..max)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---- verdicts ----------------------------------------------------------------------------------
@dataclass
class SubClaim:
    text: str
    verdict: str
    numbers: str


def _pick(configs: list[ConfigResult], **want) -> ConfigResult | None:
    for c in configs:
        cfg = c.cfg
        have = {"backend": cfg.algo.backend, "dim": cfg.env.action_dim, "type": cfg.reward.type,
                "shift": cfg.reward.shift, "scale": cfg.reward.scale, "clip": cfg.algo.grad_clip_norm > 0}
        if all(have[k] == v for k, v in want.items()) and c.runs:
            return c
    return None


def _verdict(d: float, se: float) -> str:
    """d: observed difference in the claimed direction; se: its standard error."""
    if d > max(2 * se, MIN_EFFECT):
        return "reproduced"
    if d < -max(2 * se, MIN_EFFECT) or d + 2 * se < MIN_EFFECT:
        return "not reproduced"  # clearly the other way, or an effect of the claimed size is ruled out
    return "inconclusive"


def _stat(c: ConfigResult, measure: str) -> tuple[float, float, int]:
    v = c.values(measure)
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)


def compare(text: str, better: ConfigResult | None, worse: ConfigResult | None, measure: str = "auc") -> SubClaim:
    """Claim: `better` beats `worse` on the measure (mean over seeds)."""
    if better is None or worse is None:
        return SubClaim(text, "not tested", "configuration missing from the sweep")
    (ma, sa, na), (mb, sb, nb) = _stat(better, measure), _stat(worse, measure)
    d = ma - mb
    se = math.sqrt(sa ** 2 / na + sb ** 2 / nb)
    margin = max(2 * se, MIN_EFFECT)
    verdict = _verdict(d, se)
    return SubClaim(text, verdict, f"{measure} {ma:.3f}±{sa:.3f} vs {mb:.3f}±{sb:.3f}: d={d:+.3f}, "
                                   f"margin {margin:.3f} (2·SE {2 * se:.3f})")


def interaction(text: str, a1, a2, b1, b2, measure: str = "auc") -> SubClaim:
    """Claim: (a2 - a1) > (b2 - b1), i.e. gain from 1->2 is larger under a than under b."""
    if None in (a1, a2, b1, b2):
        return SubClaim(text, "not tested", "configuration missing from the sweep")
    stats = [_stat(c, measure) for c in (a1, a2, b1, b2)]
    d = (stats[1][0] - stats[0][0]) - (stats[3][0] - stats[2][0])
    se = math.sqrt(sum(s ** 2 / n for _, s, n in stats))
    margin = max(2 * se, MIN_EFFECT)
    verdict = _verdict(d, se)
    gains = f"gain without clip {stats[1][0] - stats[0][0]:+.3f}, with clip {stats[3][0] - stats[2][0]:+.3f}"
    return SubClaim(text, verdict, f"{measure}: {gains}; difference {d:+.3f}, margin {margin:.3f}")


def converges(text: str, c: ConfigResult | None, reference: ConfigResult | None = None) -> SubClaim:
    """Claim: c's final score >= CONVERGED. Failing it only counts against the claim if a reference
    configuration (same task, easier setting) did converge within the budget."""
    if c is None:
        return SubClaim(text, "not tested", "configuration missing from the sweep")
    m, s, n = _stat(c, "final_score")
    numbers = f"final score {m:.3f}±{s:.3f} (n={n}), converged means >= {CONVERGED}"
    if m - (s if n > 1 else 0) >= CONVERGED:
        return SubClaim(text, "reproduced", numbers)
    if reference is not None and _stat(reference, "final_score")[0] >= CONVERGED and m + s < CONVERGED:
        return SubClaim(text, "not reproduced", numbers + f"; the reference ({reference.label}) converged "
                                                          "within the same budget")
    why = ("the reference did not converge either, so the budget may be too short" if reference is not None
           else "not converged within this budget, which is shorter than the seed's; no reference run shows the "
                "budget suffices" if m + s < CONVERGED else "within seed noise")
    return SubClaim(text, "inconclusive", f"{numbers}; {why}")


def finding_subclaims(finding: str, configs: list[ConfigResult]) -> list[SubClaim]:
    p = lambda **w: _pick(configs, **w)  # noqa: E731
    claims = []
    if finding == "reward_type":
        for b in ("lerobot_sac", "sb3_sac"):
            claims.append(compare(f"{b} dim 6: MSE learns better than shaped (AUC)",
                                  p(backend=b, dim=6, type="mse"), p(backend=b, dim=6, type="shaped")))
            claims.append(converges(f"{b}: MSE converges at dim 14", p(backend=b, dim=14, type="mse")))
            claims.append(converges(f"{b}: shaped converges at dim 2", p(backend=b, dim=2, type="shaped"),
                                    p(backend=b, dim=2, type="mse")))
        claims.append(compare("dim 6 shaped: SB3 PPO is steadier than SB3 SAC (lower late-run std)",
                              p(backend="sb3_sac", dim=6, type="shaped"), p(backend="sb3_ppo", dim=6, type="shaped"),
                              "stability"))
        claims.append(converges("sb3_ppo: shaped converges at dim 6", p(backend="sb3_ppo", dim=6, type="shaped"),
                                p(backend="sb3_ppo", dim=6, type="mse")))
    elif finding == "reward_shift":
        for b in ("sb3_sac", "sb3_ppo"):
            claims.append(compare(f"{b} dim 6: shaped - 1 learns better than shaped (AUC)",
                                  p(backend=b, dim=6, type="shaped", shift=-1.0),
                                  p(backend=b, dim=6, type="shaped", shift=0.0)))
    elif finding == "reward_scale":
        for lo, hi in ((1.0, 100.0), (1.0, 1000.0)):
            claims.append(compare(f"sb3_sac dim 14 MSE: scale {hi:g} learns faster than scale {lo:g} (AUC)",
                                  p(backend="sb3_sac", dim=14, type="mse", scale=hi),
                                  p(backend="sb3_sac", dim=14, type="mse", scale=lo)))
        claims.append(converges("sb3_ppo dim 14 MSE: still converges at scale 1000",
                                p(backend="sb3_ppo", dim=14, type="mse", scale=1000.0),
                                p(backend="sb3_ppo", dim=14, type="mse", scale=1.0)))
    elif finding == "grad_clip":
        a1, a2 = p(backend="lerobot_sac", scale=1.0, clip=False), p(backend="lerobot_sac", scale=100.0, clip=False)
        b1, b2 = p(backend="lerobot_sac", scale=1.0, clip=True), p(backend="lerobot_sac", scale=100.0, clip=True)
        claims.append(interaction("lerobot_sac: scale 1 -> 100 helps more without clipping than with it (AUC)",
                                  a1, a2, b1, b2))
        claims.append(compare("lerobot_sac scale 100: no clipping learns better than clipping (AUC)", a2, b2))
    return claims


def combine(claims: list[SubClaim]) -> str:
    tested = [c.verdict for c in claims if c.verdict != "not tested"]
    if not tested:
        return "not tested"
    if all(v == "reproduced" for v in tested):
        return "reproduced"
    if all(v == "not reproduced" for v in tested):
        return "not reproduced"
    return "inconclusive"


# ---- the report --------------------------------------------------------------------------------
def _fmt(mean: float, std: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def write_report(sweep: Sweep, runs_root: str | Path, only: str | None = None) -> Path:
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    studies = [sweep.study(only)] if only else sweep.studies
    lines = [f"# Sweep report: {sweep.name}", "",
             f"Runs root `{runs_root}`; sweep file `{sweep.path}`. Curves are deterministic evaluation episodes, "
             "mean over seeds. **Task score** = (raw return - random policy) / (optimal - random policy), from the "
             "env's own reward (-mean squared action error), so it compares across reward type, shift and scale: "
             "0 = random policy, 1 = optimal. **AUC** = mean task score over the run (area under the evaluation "
             "curve / env-step span). **Stability** = std of the evaluation task score over the last 25% of the env "
             "steps (lower is steadier). Final = mean of the final evaluation episodes. ± = std over seeds.", ""]
    all_configs: dict[str, list[ConfigResult]] = {}
    for study in studies:
        configs = collect(study, runs_root)
        all_configs[study.name] = configs
        png = runs_root / f"{study.name}.png"
        png_return = runs_root / f"{study.name}_return.png"
        if any(c.runs for c in configs):
            plot_study(png, study, configs, "curve_score", "task score")
            plot_study(png_return, study, configs, "curve_return", "episode return (as trained)")
        lines += [f"## {study.title} (`{study.name}`)", "",
                  f"Variable: **{study.variable}**; seeds {study.seeds}; threshold: task score {study.threshold:g}."
                  + (f" Tests seed finding `{study.finding}`." if study.finding else ""), "",
                  f"![{study.name}]({png.name}) ![{study.name} returns]({png_return.name})", "",
                  "| configuration | seeds | final return (as trained) | final task score | AUC | steps to threshold "
                  "| stability | reward-lint warnings |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in configs:
            reached = [r.steps_to_threshold for r in c.runs if r.steps_to_threshold is not None]
            steps = (f"{np.mean(reached):.0f} ({len(reached)}/{len(c.runs)})" if reached
                     else f"not reached (0/{len(c.runs)})")
            seeds = f"{len(c.runs)}" + (f" (+{c.missing} missing)" if c.missing else "")
            lines.append(f"| {c.label} | {seeds} | {_fmt(*c.mean_std('final_return'))} | "
                         f"{_fmt(*c.mean_std('final_score'), 3)} | {_fmt(*c.mean_std('auc'), 3)} | {steps} | "
                         f"{_fmt(*c.mean_std('stability'), 3)} | {', '.join(c.warnings) or '-'} |")
        lines.append("")
    lines += ["## Verdicts on the seed findings", "",
              f"Rules: a comparison is *clear* when the difference of the means exceeds max(2·SE, {MIN_EFFECT}) "
              f"task-score units (SE from the std over seeds). A comparison sub-claim is reproduced if clear in the "
              "claimed direction; not reproduced if clear against it, or if d + 2·SE < "
              f"{MIN_EFFECT} (an effect of the claimed direction and size is ruled out); else inconclusive. A convergence sub-claim is "
              f"reproduced if mean - std of the final task score >= {CONVERGED}, not reproduced if mean + std < "
              f"{CONVERGED} while a reference configuration (same backend, easier setting) converged in the same "
              "budget, else inconclusive. A finding is reproduced if all its tested sub-claims are, not reproduced if all are "
              "not, otherwise inconclusive. The budget here (env steps, seeds) is far smaller than the seed's.", "",
              "| finding | verdict | study |", "|---|---|---|"]
    details = []
    for key, text in FINDINGS.items():
        study = next((s for s in studies if s.finding == key), None)
        if study is None:
            lines.append(f"| {text} | not tested | - |")
            continue
        claims = finding_subclaims(key, all_configs[study.name])
        verdict = combine(claims)
        lines.append(f"| {text} | **{verdict}** | `{study.name}` |")
        details += [f"### Finding {text.split('.')[0]}: {verdict}", ""]
        details += [f"- {c.text}: **{c.verdict}** — {c.numbers}" for c in claims] + [""]
    lines += [""] + details
    path = runs_root / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def verdict_table(report_path: str | Path) -> str:
    text = Path(report_path).read_text()
    start = text.index("## Verdicts on the seed findings")
    return text[start:]
