"""Diagnostics: sweep expansion and validation, the smoke sweep end to end (plots, report,
verdicts), resume after an interruption, the PPO runner, the statistics, and the pipeline check."""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import yaml

from kuavo_rl.config import ConfigError, config_from_dict
from kuavo_rl.diagnostics.sweep import SweepError, expand, load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "config" / "sweeps" / "smoke.yaml"
RECIPE = REPO / "config" / "sweeps" / "seed_recipe.yaml"


def _sweep(**study):
    return {"name": "t", "base": {"env": {"action_dim": 2, "target": 0.5}, "run": {"total_env_steps": 300}},
            "studies": [{"name": "s", **study}]}


def test_grid_expands_to_cartesian_product_union_and_bundles():
    sweep = expand(_sweep(seeds=[0, 1], set={"reward.type": "shaped"}, grid=[
        {"env.action_dim": [2, 6], "reward.shift": [0.0, -1.0],
         "backend": {"sac": {"algo.backend": "sb3_sac", "algo.learning_starts": 10}, "ppo": {"algo.backend": "sb3_ppo"}}},
        {"env.action_dim": [14], "reward.shift": [0.0], "backend": {"ppo": {"algo.backend": "sb3_ppo"}}}]))
    runs = sweep.runs
    assert len(runs) == (2 * 2 * 2 + 1) * 2
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == len(ids)
    assert "s/action_dim-6_shift--1_sac_seed1" in ids
    run = next(r for r in runs if r.run_id == "s/action_dim-6_shift--1_sac_seed1")
    cfg = run.experiment()
    assert (cfg.env.action_dim, cfg.reward.type, cfg.reward.shift, cfg.algo.backend, cfg.run.seed) == (6, "shaped", -1.0, "sb3_sac", 1)
    assert cfg.algo.learning_starts == 10 and cfg.env.target == 0.5
    assert run.dir("/r") == Path("/r/s/action_dim-6_shift--1_sac_seed1")
    assert expand(_sweep(seeds=[0, 1], grid={"reward.scale": [1, 100]})).runs[0].run_id == "s/scale-1_seed0"
    # deterministic: expanding again gives the same ids in the same order
    assert [r.run_id for r in expand(_sweep(seeds=[0, 1], set={"reward.type": "shaped"}, grid=[
        {"env.action_dim": [2, 6], "reward.shift": [0.0, -1.0],
         "backend": {"sac": {"algo.backend": "sb3_sac", "algo.learning_starts": 10}, "ppo": {"algo.backend": "sb3_ppo"}}},
        {"env.action_dim": [14], "reward.shift": [0.0], "backend": {"ppo": {"algo.backend": "sb3_ppo"}}}])).runs] == ids


def test_recipe_and_smoke_sweeps_are_valid():
    recipe = load_sweep(RECIPE)
    assert {s.finding for s in recipe.studies} == {"reward_type", "reward_shift", "reward_scale", "grad_clip"}
    backends = {r.experiment().algo.backend for r in recipe.runs}
    assert backends == {"lerobot_sac", "sb3_sac", "sb3_ppo"}
    smoke = load_sweep(SMOKE)
    assert {r.experiment().algo.backend for r in smoke.runs} == {"lerobot_sac", "sb3_sac", "sb3_ppo"}


def test_unhonourable_key_is_reported_at_start_up_before_any_run(tmp_path, capsys):
    data = _sweep(seeds=[0], grid={"backend": {"lerobot": {"algo.backend": "lerobot_sac", "algo.grad_clip_norm": 10.0},
                                               "sb3": {"algo.backend": "sb3_sac", "algo.grad_clip_norm": 10.0}}})
    with pytest.raises(SweepError) as error:
        expand(data)
    assert "run s/sb3_seed0" in str(error.value) and "grad_clip_norm" in str(error.value)
    assert "s/lerobot_seed0" not in str(error.value)  # only the bad run is named
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    from kuavo_rl.cli import main
    assert main(["sweep", str(path), "--runs-root", str(tmp_path / "runs")]) == 2
    assert "s/sb3_seed0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing ran, not even the valid run
    with pytest.raises(SweepError, match="unknown key"):
        expand(_sweep(grid={"algo.no_such_key": [1]}))


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory):
    from kuavo_rl.cli import main
    root = tmp_path_factory.mktemp("smoke")
    assert main(["sweep", str(SMOKE), "--runs-root", str(root), "--jobs", "2", "--quiet"]) == 0
    return root


@pytest.mark.slow
def test_smoke_sweep_end_to_end(smoke_root):
    sweep = load_sweep(SMOKE)
    for run in sweep.runs:
        run_dir = run.dir(smoke_root)
        done = yaml.safe_load((run_dir / "done.yaml").read_text())
        assert done["run_id"] == run.run_id and math.isfinite(done["final_eval_return"])
        header = (run_dir / "episodes.csv").read_text().splitlines()[0]
        assert header.startswith("env_steps,episode_id,return,raw_return,length,evaluation")
        assert list((run_dir / "tensorboard").iterdir())
    report = (smoke_root / "report.md").read_text()
    for study in sweep.studies:
        assert (smoke_root / f"{study.name}.png").stat().st_size > 1000
        assert f"(`{study.name}`)" in report
    assert report.count("| configuration | seeds | final return") == len(sweep.studies)
    assert "## Verdicts on the seed findings" in report
    for label in ("backend=lerobot_sac", "backend=sb3_sac", "backend=sb3_ppo"):
        assert label in report


@pytest.mark.slow
def test_interrupted_sweep_reruns_only_the_missing_run(smoke_root, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(smoke_root, root)
    sweep = load_sweep(SMOKE)
    victim = next(r for r in sweep.runs if r.experiment().algo.backend == "sb3_ppo")
    (victim.dir(root) / "done.yaml").unlink()  # as if interrupted before it finished
    (victim.dir(root) / "half_written.csv").write_text("junk")
    before = {r.run_id: (r.dir(root) / "done.yaml").read_text() for r in sweep.runs if r is not victim}
    result = run_sweep(sweep, root, jobs=2, quiet=True)
    assert result.executed == [victim.run_id] and not result.failed
    assert sorted(result.skipped) == sorted(before)
    for run_id, text in before.items():
        assert (root / run_id / "done.yaml").read_text() == text  # untouched
    assert not (victim.dir(root) / "half_written.csv").exists()  # the half-written dir was wiped
    assert (victim.dir(root) / "done.yaml").is_file()
    assert run_sweep(sweep, root, jobs=2, quiet=True).executed == []


@pytest.mark.slow
def test_ppo_runner_learns_on_two_dims(tmp_path):
    from kuavo_rl.diagnostics.ppo import train_ppo
    from kuavo_rl.run_log import read_rows
    cfg = config_from_dict({"env": {"action_dim": 2, "target": 0.5}, "reward": {"type": "shaped", "shift": -1.0},
                            "algo": {"backend": "sb3_ppo", "ppo_n_steps": 512, "discount": 0.95},
                            "actor": {"eval_every_episodes": 2}, "run": {"total_env_steps": 4000, "seed": 3}})
    result = train_ppo(cfg, tmp_path, quiet=True)
    assert result["env_steps"] == 4000
    rows = read_rows(tmp_path / "episodes.csv")
    train = [r for r in rows if not r["evaluation"]]
    evals = [r for r in rows if r["evaluation"]]
    assert len(train) == 20 and all(r["length"] == 200 for r in rows)
    # eval_every_episodes 2: every 2nd episode is an evaluation (as the SAC actor does), then the final ones
    assert len(evals) == 20 + cfg.actor.final_eval_episodes
    assert [r["episode_id"] for r in rows] == list(range(len(rows)))
    assert max(r["return"] for r in evals[1:]) > evals[0]["return"] + 10  # it learns something


def test_ppo_uses_sb3_defaults_unless_a_key_is_set():
    from kuavo_rl.diagnostics.ppo import ppo_kwargs
    kwargs = ppo_kwargs(config_from_dict({"algo": {"backend": "sb3_ppo"}}))
    assert "batch_size" not in kwargs and "max_grad_norm" not in kwargs
    kwargs = ppo_kwargs(config_from_dict({"algo": {"backend": "sb3_ppo", "batch_size": 32, "grad_clip_norm": 0.0}}))
    assert kwargs["batch_size"] == 32 and kwargs["max_grad_norm"] == math.inf
    with pytest.raises(ConfigError):
        config_from_dict({"algo": {"backend": "sb3_ppo", "learning_starts": 10}})


def test_welch_t_test_and_verdict_rules():
    from kuavo_rl.diagnostics.pipeline_check import compare_sides, welch_t_test
    test = welch_t_test([1, 2, 3, 4], [2, 4, 6, 9])
    assert test["t"] == pytest.approx(-1.6906, abs=1e-3) and test["df"] == pytest.approx(4.0836, abs=1e-3)
    assert test["p"] == pytest.approx(0.1647, abs=1e-4)
    assert welch_t_test([1.0, 1.1, 0.9], [5.0, 5.2, 4.9])["p"] < 0.001
    assert all(math.isnan(v) for v in welch_t_test([1.0], [2.0, 3.0]).values())
    assert welch_t_test([2.0, 2.0], [2.0, 2.0])["p"] == 1.0 and welch_t_test([2.0, 2.0], [3.0, 3.0])["p"] == 0.0
    same = compare_sides({"final": [-5, -6], "auc": [-20, -22]}, {"final": [-6, -5.5], "auc": [-21, -23]}, 100.0)
    assert all(s["agree"] for s in same.values())
    off = compare_sides({"final": [-5, -6], "auc": [-20, -22]}, {"final": [-300, -320], "auc": [-200, -220]}, 100.0)
    assert not off["final"]["agree"]
    from kuavo_rl.diagnostics.report import SubClaim, combine
    assert combine([SubClaim("a", "reproduced", ""), SubClaim("b", "not tested", "")]) == "reproduced"
    assert combine([SubClaim("a", "reproduced", ""), SubClaim("b", "not reproduced", "")]) == "inconclusive"
    assert combine([SubClaim("a", "not reproduced", "")]) == "not reproduced"
    from kuavo_rl.diagnostics.report import _verdict
    assert _verdict(0.2, 0.01) == "reproduced"  # clear in the claimed direction
    assert _verdict(-0.2, 0.01) == "not reproduced"  # clear against it
    assert _verdict(0.0, 0.005) == "not reproduced"  # a precise null: an effect >= MIN_EFFECT is ruled out
    assert _verdict(0.06, 0.05) == "inconclusive"  # within seed noise


# ---- the pipeline check (needs the built workspace: source scripts/env.sh) -----------------------
CHECK_OVERRIDES = ["env.action_dim=2", "env.target=0.5", "run.total_env_steps=1500", "algo.learning_starts=300"]


@pytest.fixture(scope="module")
def check_dirs(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline_check")


@pytest.mark.slow
def test_pipeline_check_agrees_on_the_toy_task(check_dirs):
    from kuavo_rl.diagnostics.pipeline_check import run_check
    result = run_check(str(REPO / "config" / "toy_mse.yaml"), CHECK_OVERRIDES, seeds=2, out_dir=check_dirs / "ok",
                       inprocess_dir=check_dirs / "inprocess", quiet=True)
    assert (check_dirs / "ok" / "pipeline_check.md").is_file() and (check_dirs / "ok" / "pipeline_check.png").is_file()
    assert result["verdict"] == "agree", result["markdown"]


@pytest.mark.slow
def test_pipeline_check_detects_a_sign_flipped_reward(check_dirs):
    from kuavo_rl.diagnostics.pipeline_check import run_check
    result = run_check(str(REPO / "config" / "toy_mse.yaml"), CHECK_OVERRIDES, seeds=2, out_dir=check_dirs / "fault",
                       inprocess_dir=check_dirs / "inprocess", fault="reward_sign", quiet=True)
    assert result["verdict"] == "disagree", result["markdown"]
    assert os.environ.get("KUAVO_RL_FAULT") is None  # set only in the pipeline run processes


# ---- the verdict engine on a user's own grid (fabricated run outputs: no training) ---------------
def _fake_runs(sweep, root: Path, score_of) -> None:
    """Write each run's config.yaml, episodes.csv and done.yaml as a finished run would, with evaluation
    task scores rising linearly to score_of(cfg, seed) (random policy raw return -1, optimum 0)."""
    from kuavo_rl.learner_core import EpisodeRecord
    from kuavo_rl.run_log import RunLog
    for spec in sweep.runs:
        cfg, run_dir = spec.experiment(), spec.dir(root)
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
        log, final = RunLog(run_dir, tensorboard=False), score_of(cfg, spec.seed)
        steps = cfg.run.total_env_steps
        for k in range(5):
            raw = -1.0 + final * k / 4  # task score = raw + 1
            log.episode(EpisodeRecord(steps * k // 4, k, raw, raw, 10, True, 0))
        log.close()
        (run_dir / "done.yaml").write_text(yaml.safe_dump({"seed": spec.seed, "random_raw_return": -1.0,
                                                           "optimal_raw_return": 0.0}))


def _user_grid(grid, **study):
    return expand({"name": "user", "base": {"env": {"action_dim": 6, "target": -0.3}, "reward": {"type": "shaped"},
                                           "algo": {"backend": "lerobot_sac"}, "run": {"total_env_steps": 1000}},
                   "studies": [{"name": "mine", "seeds": [0, 1, 2], "grid": grid, **study}]})


def _verdict_rows(report: Path) -> dict[str, str]:
    rows = {}
    for line in report.read_text().split("## Verdicts on the seed findings")[1].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0][:2] in ("1.", "2.", "3.", "4."):
            rows.setdefault(cells[0][:1], []).append(cells[1:])
    return rows


def test_a_user_grid_on_another_backend_and_target_gets_a_verdict_for_the_finding_it_varies(tmp_path):
    from kuavo_rl.diagnostics.report import write_report
    sweep = _user_grid({"reward.shift": [0.0, -1.0]})  # no `finding:` declared, as a new user would write it
    # the penalty form ends at task score 0.9 +- 0.01, the bonus form at 0.5: clearly better
    _fake_runs(sweep, tmp_path, lambda cfg, seed: (0.9 if cfg.reward.shift < 0 else 0.5) + 0.01 * seed)
    rows = _verdict_rows(write_report(sweep, tmp_path))
    assert rows["2"] == [["**reproduced**", "`mine`", "lerobot_sac dim 6"]]
    assert rows["1"][0][0] == "**not tested**" and rows["3"][0][0] == "**not tested**"  # the grid does not vary them
    report = (tmp_path / "report.md").read_text()
    assert "lerobot_sac, dim 6, target -0.3, zero_obs, shaped: shift -1 (a penalty) learns better than shift 0" \
        in report

    flipped = tmp_path / "flipped"
    _fake_runs(sweep, flipped, lambda cfg, seed: (0.5 if cfg.reward.shift < 0 else 0.9) + 0.01 * seed)
    assert _verdict_rows(write_report(sweep, flipped))["2"][0][0] == "**not reproduced**"


def test_a_grid_that_varies_quirks_gets_a_verdict_per_quirk_setting_and_says_which_makes_the_finding_appear(tmp_path):
    from kuavo_rl.diagnostics.report import write_report
    sweep = _user_grid({"reward.scale": [1.0, 100.0], "quirks": {
        "none": {}, "time_limit_as_terminal": {"quirks.time_limit_as_terminal": True}},
        "backend": {"sb3_sac": {"algo.backend": "sb3_sac"}, "lerobot_sac": {"algo.backend": "lerobot_sac"}}},
        finding="reward_scale")

    def score(cfg, seed):  # a larger scale helps only with the quirk on
        helped = cfg.quirks.time_limit_as_terminal and cfg.reward.scale > 1
        return (0.9 if helped else 0.5) + 0.01 * seed
    _fake_runs(sweep, tmp_path, score)
    report_path = write_report(sweep, tmp_path)
    rows = _verdict_rows(report_path)["3"]
    assert ["**not reproduced**", "`mine`, quirks **none**", "lerobot_sac dim 6; sb3_sac dim 6"] in rows
    assert ["**reproduced**", "`mine`, quirks **time_limit_as_terminal**", "lerobot_sac dim 6; sb3_sac dim 6"] in rows
    report = report_path.read_text()
    assert "## Which quirk makes a finding appear" in report
    assert "appears with **time_limit_as_terminal**; without quirks it is not reproduced" in report
    # one claim per backend and quirk setting, each naming both
    assert report.count(": scale 100 learns faster than scale 1 (AUC)") == 4
    assert "sb3_sac, dim 6, target -0.3, zero_obs, quirks time_limit_as_terminal, shaped: scale 100" in report


# ---- sweep progress inside running runs ----------------------------------------------------------
def _logging_task(task: tuple[str, int]) -> int:
    """Stands in for a training run: logs an episode row every 0.4 s, as RunLog does."""
    import time
    path, steps = task
    Path(path).write_text("env_steps,episode_id,return\n")
    for done in range(100, steps + 1, 100):
        time.sleep(0.4)
        with open(path, "a") as handle:
            handle.write(f"{done},0,-1.0\n")
    return steps


def test_sweep_progress_counts_env_steps_inside_runs_that_have_not_finished(tmp_path):
    import io
    import time
    from kuavo_rl.diagnostics.pool import run_in_pool
    from kuavo_rl.diagnostics.sweep import last_env_steps
    started = time.time()
    tasks = [(str(tmp_path / f"run{k}.csv"), 400) for k in range(2)]
    stream = io.StringIO()
    run_in_pool(_logging_task, tasks, jobs=2, costs=[1.0, 1.0], stream=stream, period_s=0.2, unit="env steps",
                progress_of=lambda task: (last_env_steps(Path(task[0]), started), task[1]))
    lines = [line for line in stream.getvalue().splitlines() if "0/2 finished" in line]
    counts = {int(line.split("] ")[1].split("/")[0]) for line in lines}
    assert lines[0].startswith("[pool env steps] 0/800")
    assert len(counts - {0}) >= 2, lines  # steps of unfinished runs show up, and grow, before any run finishes
    assert "ETA ?" not in lines[-1]
    assert "[pool env steps] 800/800 (100%)" in stream.getvalue()


def test_last_env_steps_reads_the_last_complete_row_of_a_fresh_file_only(tmp_path):
    from kuavo_rl.diagnostics.sweep import last_env_steps
    path = tmp_path / "episodes.csv"
    assert last_env_steps(path, 0) == 0  # not there yet
    path.write_text("env_steps,episode_id\n")
    assert last_env_steps(path, 0) == 0
    path.write_text("env_steps,episode_id\n" + "".join(f"{200 * k},{k}\n" for k in range(1, 400)) + "80")
    assert last_env_steps(path, 0) == 200 * 399  # the half-written row is not read as 80
    os.utime(path, (1000, 1000))
    assert last_env_steps(path, 2000) == 0  # a file left by an earlier, interrupted attempt


def test_the_seed_recipes_claims_are_the_seeds_own_in_every_context(tmp_path):
    from kuavo_rl.diagnostics.report import collect, finding_subclaims
    recipe = load_sweep(RECIPE)
    _fake_runs(recipe, tmp_path, lambda cfg, seed: 0.5 + 0.01 * seed)
    texts = {s.name: [c.text for c in finding_subclaims(s.finding, collect(s, tmp_path))] for s in recipe.studies}
    reward_type = texts["reward_type"]
    for backend in ("lerobot_sac", "sb3_sac"):
        assert f"{backend}, dim 6, target 0.5, zero_obs: MSE learns better than the always-positive shaped reward " \
               "(AUC)" in reward_type
        assert not any(t.startswith(f"{backend}, dim 2") and "learns better" in t for t in reward_type)  # easy dim
        assert f"{backend}, dim 2, target 0.5, zero_obs: shaped converges (an easy dimension)" in reward_type
        assert f"{backend}, dim 14, target 0.5, zero_obs: MSE converges" in reward_type
        assert f"dim 6, target 0.5, zero_obs, shaped: sb3_ppo is steadier than {backend} (lower late-run std)" \
               in reward_type
    assert "sb3_ppo, dim 6, target 0.5, zero_obs: shaped converges (PPO converges in the end)" in reward_type
    assert texts["reward_shift"] == [
        f"{b}, dim 6, target 0.5, zero_obs, shaped: shift -1 (a penalty) learns better than shift 0 (AUC)"
        for b in ("sb3_sac", "sb3_ppo")]
    assert texts["reward_scale"] == [
        "sb3_sac, dim 14, target 0.5, zero_obs, mse: scale 100 learns faster than scale 1 (AUC)",
        "sb3_sac, dim 14, target 0.5, zero_obs, mse: scale 1000 learns faster than scale 1 (AUC)",
        "sb3_ppo, dim 14, target 0.5, zero_obs, mse: still converges at scale 1000"]
    assert texts["grad_clip"] == [
        "lerobot_sac, dim 14, target 0.5, zero_obs: scale 1 -> 100 helps more with no clipping than with clipping "
        "at 10 (AUC)",
        "lerobot_sac, dim 14, target 0.5, zero_obs, scale 100: no clipping learns better than clipping at 10 (AUC)"]

