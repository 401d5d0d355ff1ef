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

Verdict rules (a study tests the finding it declares with `finding:`; a study that declares none tests
every finding whose variable its grid varies: reward.type, reward.shift, reward.scale, algo.grad_clip_norm):
- A finding's claims are checked in every context of the study: the configurations that differ only
  in the finding's variable(s), for whatever backend, action dim, target and quirks the grid has
  (report.FINDING_VARIABLES, Contexts). A study that varies quirks gets one verdict per quirk setting.
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

import functools
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

    @functools.cached_property
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
    d: float | None = None  # a comparison's difference in the claimed direction (task-score units)


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
                                   f"margin {margin:.3f} (2·SE {2 * se:.3f})", d)


def interaction(text: str, a1, a2, b1, b2, measure: str = "auc") -> SubClaim:
    """Claim: (a2 - a1) > (b2 - b1), i.e. gain from 1->2 is larger under a than under b."""
    if None in (a1, a2, b1, b2):
        return SubClaim(text, "not tested", "configuration missing from the sweep")
    stats = [_stat(c, measure) for c in (a1, a2, b1, b2)]
    d = (stats[1][0] - stats[0][0]) - (stats[3][0] - stats[2][0])
    se = math.sqrt(sum(s ** 2 / n for _, s, n in stats))
    margin = max(2 * se, MIN_EFFECT)
    verdict = _verdict(d, se)
    gains = f"gains {stats[1][0] - stats[0][0]:+.3f} vs {stats[3][0] - stats[2][0]:+.3f}"
    return SubClaim(text, verdict, f"{measure}: {gains}; difference {d:+.3f}, margin {margin:.3f}", d)


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
    if m + s >= CONVERGED:
        why = "within seed noise"
    elif reference is None:
        why = ("not converged within this budget, which is shorter than the seed's; no reference run shows the "
               "budget suffices")
    else:
        why = "the reference did not converge either, so the budget may be too short"
    return SubClaim(text, "inconclusive", f"{numbers}; {why}")


# What each finding is about: the configuration keys it varies. A study tests a finding when its grid
# varies the first of them; every other key that varies in the study defines a context (backend,
# dimension, target, quirks, ...), and the finding's claims are checked in each context separately.
FINDING_VARIABLES = {
    "reward_type": ("reward.type",),
    "reward_shift": ("reward.shift",),
    "reward_scale": ("reward.scale",),
    "grad_clip": ("algo.grad_clip_norm", "reward.scale"),
}
SAC_BACKENDS = ("lerobot_sac", "sb3_sac")
HARD_DIM = 6  # the seed: the always-positive shaped reward was easy at dim 2, hard from dim 6 on


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("weights",):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def _quirk_setting(c: ConfigResult) -> str:
    return "+".join(c.cfg.quirks.active()) or "none"


class Contexts:
    """Groups a study's configurations by everything that varies in it except the finding's variables."""

    def __init__(self, configs: list[ConfigResult], variables: tuple[str, ...]):
        self.configs = [c for c in configs if c.runs]
        self.flat = {id(c): _flat(c.cfg.to_dict()) for c in self.configs}
        keys = set().union(*(f.keys() for f in self.flat.values())) if self.flat else set()
        self.varying = {k for k in keys if len({repr(f.get(k)) for f in self.flat.values()}) > 1} - {"run.seed"}
        self.variables = set(variables)
        # keys that only follow the backend (a bundle's learning rate, batch size, ...) name nothing new
        self.follows_backend = {k for k in self.varying - {"algo.backend"}
                                if all(len({repr(self.flat[id(c)].get(k)) for c in self.configs
                                            if c.cfg.algo.backend == b}) == 1
                                       for b in {c.cfg.algo.backend for c in self.configs})}

    def varies(self, key: str) -> bool:
        return key in self.varying

    def groups(self, ignore: set[str] = frozenset()) -> list[list[ConfigResult]]:
        keys = sorted(self.varying - self.variables - set(ignore))
        groups: dict[tuple, list[ConfigResult]] = {}
        for c in self.configs:
            groups.setdefault(tuple(repr(self.flat[id(c)].get(k)) for k in keys), []).append(c)
        return list(groups.values())

    def label(self, c: ConfigResult, without_backend: bool = False) -> str:
        cfg = c.cfg
        parts = [] if without_backend else [cfg.algo.backend]
        parts.append(f"dim {cfg.env.action_dim}")
        if cfg.env.name == "toy":
            parts += [f"target {cfg.env.target:g}", cfg.env.obs_mode]
        else:
            parts.append(cfg.env.name)
        shown = {"algo.backend", "env.action_dim", "env.target", "env.obs_mode", "env.name"}
        if cfg.quirks.active():
            parts.append(f"quirks {_quirk_setting(c)}")
        extra = sorted(self.varying - self.variables - shown - self.follows_backend)
        parts += [f"{k}={_value(self.flat[id(c)].get(k))}" for k in extra if not k.startswith("quirks.")]
        return " ".join(parts[:1]) + (", " + ", ".join(parts[1:]) if len(parts) > 1 else "")


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _by(group: list[ConfigResult], key) -> dict:
    return {key(c.cfg): c for c in group}


def _varied(ctx: Contexts, key) -> list[dict]:
    """Per context, its configurations by key(cfg), where the context has at least two values of it."""
    return [values for values in (_by(group, key) for group in ctx.groups()) if len(values) >= 2]


def _clip_looseness(norm: float) -> float:
    return math.inf if norm <= 0 else norm  # 0 = no clipping, the loosest


def _reward_type_claims(ctx: Contexts) -> list[SubClaim]:
    claims = []
    for group in ctx.groups():
        types = _by(group, lambda cfg: cfg.reward.type)
        mse, shaped = types.get("mse"), types.get("shaped")
        some = mse or shaped
        if some is None:
            continue
        where, cfg = ctx.label(some), some.cfg
        if cfg.algo.backend in SAC_BACKENDS:
            if mse is not None and shaped is not None and cfg.env.action_dim >= HARD_DIM:
                claims.append(compare(f"{where}: MSE learns better than the always-positive shaped reward (AUC)",
                                      mse, shaped))
            if shaped is not None and cfg.env.action_dim < HARD_DIM:
                claims.append(converges(f"{where}: shaped converges (an easy dimension)", shaped, mse))
            if mse is not None:
                claims.append(converges(f"{where}: MSE converges", mse))
        else:
            for name, c in types.items():
                if name in ("mse", "shaped"):
                    other = shaped if name == "mse" else mse
                    claims.append(converges(f"{where}: {name} converges (PPO converges in the end)", c, other))
    for group in ctx.groups(ignore={"algo.backend"} | ctx.follows_backend):  # SAC vs PPO on the same setting
        ppo = [c for c in group if c.cfg.algo.backend == "sb3_ppo" and c.cfg.reward.type == "shaped"]
        for sac in [c for c in group if c.cfg.algo.backend in SAC_BACKENDS and c.cfg.reward.type == "shaped"]:
            if ppo and sac.cfg.env.action_dim >= HARD_DIM:
                claims.append(compare(f"{ctx.label(sac, without_backend=True)}, shaped: sb3_ppo is steadier than "
                                      f"{sac.cfg.algo.backend} (lower late-run std)", sac, ppo[0], "stability"))
    return claims


def _reward_shift_claims(ctx: Contexts) -> list[SubClaim]:
    claims = []
    for shifts in _varied(ctx, lambda cfg: cfg.reward.shift):
        low, high = min(shifts), max(shifts)
        c = shifts[low]
        claims.append(compare(f"{ctx.label(c)}, {c.cfg.reward.type}: shift {low:g} (a penalty) learns better than "
                              f"shift {high:g} (AUC)", c, shifts[high]))
    return claims


def _reward_scale_claims(ctx: Contexts) -> list[SubClaim]:
    claims = []
    for scales in _varied(ctx, lambda cfg: cfg.reward.scale):
        low = min(scales)
        where = f"{ctx.label(scales[low])}, {scales[low].cfg.reward.type}"
        if scales[low].cfg.algo.backend in SAC_BACKENDS:
            for high in sorted(scales)[1:]:
                claims.append(compare(f"{where}: scale {high:g} learns faster than scale {low:g} (AUC)",
                                      scales[high], scales[low]))
        else:
            high = max(scales)
            claims.append(converges(f"{where}: still converges at scale {high:g}", scales[high], scales[low]))
    return claims


def _grad_clip_claims(ctx: Contexts) -> list[SubClaim]:
    claims = []
    for group in ctx.groups():
        cells = _by(group, lambda cfg: (_clip_looseness(cfg.algo.grad_clip_norm), cfg.reward.scale))
        clips = sorted({clip for clip, _ in cells})
        scales = sorted({scale for _, scale in cells})
        if len(clips) < 2:
            continue
        tight, loose = clips[0], clips[-1]
        name = lambda clip: "no clipping" if math.isinf(clip) else f"clipping at {clip:g}"  # noqa: E731
        where = ctx.label(next(iter(cells.values())))
        high = scales[-1]
        if len(scales) >= 2:
            low = scales[0]
            claims.append(interaction(f"{where}: scale {low:g} -> {high:g} helps more with {name(loose)} than with "
                                      f"{name(tight)} (AUC)", cells.get((loose, low)), cells.get((loose, high)),
                                      cells.get((tight, low)), cells.get((tight, high))))
        if high > 1:
            claims.append(compare(f"{where}, scale {high:g}: {name(loose)} learns better than {name(tight)} (AUC)",
                                  cells.get((loose, high)), cells.get((tight, high))))
        elif len(scales) == 1:
            claims.append(SubClaim(f"{where}: {name(loose)} vs {name(tight)}", "not tested",
                                   f"the finding is about a large reward scale; this grid varies clipping at scale "
                                   f"{high:g} only"))
    return claims


CLAIMS = {"reward_type": _reward_type_claims, "reward_shift": _reward_shift_claims,
          "reward_scale": _reward_scale_claims, "grad_clip": _grad_clip_claims}


def finding_subclaims(finding: str, configs: list[ConfigResult]) -> list[SubClaim]:
    """The finding's claims in every context of these configurations where the grid varies the finding's
    variable (whatever the backend, dimension and target); none when it does not vary it."""
    ctx = Contexts(configs, FINDING_VARIABLES[finding])
    if not ctx.varies(FINDING_VARIABLES[finding][0]):
        return []
    return CLAIMS[finding](ctx)


def quirk_groups(configs: list[ConfigResult]) -> dict[str, list[ConfigResult]]:
    """The configurations by quirk setting ('none', 'time_limit_as_terminal', 'a+b', ...)."""
    groups: dict[str, list[ConfigResult]] = {}
    for c in configs:
        groups.setdefault(_quirk_setting(c), []).append(c)
    return groups


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
              "Each claim is checked wherever the study's grid varies what the finding is about (reward type, "
              "shift, scale, gradient clipping), separately for every other setting the grid varies (backend, "
              "action dim, target, quirks, ...); *covers* names them. A study that declares `finding:` is checked "
              "for that finding only; one that does not, for every finding whose variable its grid varies.", "",
              "| finding | verdict | study | covers |", "|---|---|---|---|"]
    verdicts = [v for key in FINDINGS for v in finding_verdicts(key, studies, all_configs)]
    details = []
    for v in verdicts:
        lines.append(f"| {FINDINGS[v.finding]} | **{v.verdict}** | {v.where} | {v.covers} |")
        if v.claims:
            details += [f"### Finding {FINDINGS[v.finding].split('.')[0]}, {v.where}: {v.verdict}", ""]
            details += [f"- {c.text}: **{c.verdict}** — {c.numbers}" for c in v.claims] + [""]
    lines += [""] + quirk_section(verdicts) + details
    path = runs_root / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class FindingVerdict:
    finding: str
    study: str | None
    quirks: str | None  # the quirk setting, when the study varies quirks
    verdict: str
    claims: list[SubClaim]
    covers: str

    @property
    def where(self) -> str:
        if self.study is None:
            return "-"
        return f"`{self.study}`" + (f", quirks **{self.quirks}**" if self.quirks else "")


def _covers(configs: list[ConfigResult]) -> str:
    shown = sorted({(c.cfg.algo.backend, c.cfg.env.action_dim) for c in configs if c.runs})
    return "; ".join(f"{backend} dim {dim}" for backend, dim in shown) or "-"


def studies_testing(finding: str, studies: list[Study], all_configs: dict[str, list[ConfigResult]]) -> list[Study]:
    """Studies that declare the finding, and studies that declare none but vary its variable."""
    variable = FINDING_VARIABLES[finding][0]
    return [s for s in studies if s.finding == finding or (
        s.finding is None and Contexts(all_configs[s.name], ()).varies(variable))]


def finding_verdicts(finding: str, studies: list[Study],
                     all_configs: dict[str, list[ConfigResult]]) -> list[FindingVerdict]:
    """One verdict per study testing the finding, and per quirk setting where the study varies quirks."""
    testing = studies_testing(finding, studies, all_configs)
    if not testing:
        return [FindingVerdict(finding, None, None, "not tested", [], "no study varies "
                               + FINDING_VARIABLES[finding][0])]
    verdicts = []
    for study in testing:
        groups = quirk_groups(all_configs[study.name])
        for setting, configs in groups.items():
            claims = finding_subclaims(finding, configs)
            covers = _covers(configs) if claims else f"the grid does not vary {FINDING_VARIABLES[finding][0]}"
            verdicts.append(FindingVerdict(finding, study.name, setting if len(groups) > 1 else None,
                                           combine(claims), claims, covers))
    return verdicts


def quirk_section(verdicts: list[FindingVerdict]) -> list[str]:
    """Per finding and study that varies quirks: which quirk setting makes the finding appear."""
    by_study: dict[tuple[str, str], list[FindingVerdict]] = {}
    for v in verdicts:
        if v.quirks is not None:
            by_study.setdefault((v.finding, v.study), []).append(v)
    if not by_study:
        return []
    lines = ["## Which quirk makes a finding appear", "",
             "The studies below rerun a finding with pipeline quirks switched on (`quirks.*`: imitations of other "
             "set-ups, e.g. a time limit reported as terminal). Per quirk setting: the verdict, how many of its "
             "tested sub-claims were reproduced, and each comparison's difference d in the claimed direction "
             "(task-score units, in the order of the sub-claims listed below).", "",
             "| finding | study | quirks | verdict | sub-claims reproduced | d per comparison | covers |",
             "|---|---|---|---|---|---|---|"]
    statements = []
    for (finding, study), group in by_study.items():
        for v in group:
            tested = [c for c in v.claims if c.verdict != "not tested"]
            reproduced = sum(c.verdict == "reproduced" for c in tested)
            differences = ", ".join(f"{c.d:+.3f}" for c in tested if c.d is not None) or "-"
            lines.append(f"| {FINDINGS[finding].split(':')[0]} | `{study}` | {v.quirks} | **{v.verdict}** | "
                         f"{reproduced}/{len(tested)} | {differences} | {v.covers} |")
        appears = [v.quirks for v in group if v.verdict == "reproduced" and v.quirks != "none"]
        baseline = next((v.verdict for v in group if v.quirks == "none"), "not run")
        name = FINDINGS[finding].split(":")[0]
        if baseline == "reproduced":
            statements.append(f"- {name} (`{study}`): appears without any quirk (no quirks: reproduced).")
        elif appears:
            statements.append(f"- {name} (`{study}`): appears with **{', '.join(appears)}**; without quirks it is "
                              f"{baseline}.")
        else:
            statements.append(f"- {name} (`{study}`): no quirk setting of this study makes it appear (without quirks: "
                              f"{baseline}; " + "; ".join(f"{v.quirks}: {v.verdict}" for v in group
                                                          if v.quirks != "none") + ").")
    return lines + [""] + statements + [""]


def verdict_table(report_path: str | Path) -> str:
    text = Path(report_path).read_text()
    start = text.index("## Verdicts on the seed findings")
    return text[start:]
