"""The env table, env_spec (dimensions without building a simulator) and the node plan that the CLI,
the supervisor and train.launch.py share."""
from pathlib import Path

import pytest

from kuavo_rl.config import ConfigError, EnvConfig, load_config
from kuavo_rl.envs import ENVS, env_spec, make_env
from kuavo_rl.launch_plan import NODES, default_config_path, node_parameters, plan_nodes, vr_overrides


@pytest.mark.parametrize("env", [EnvConfig(name="toy", action_dim=6), EnvConfig(name="pick_lift", action_dim=4)],
                         ids=["toy", "pick_lift"])
def test_env_spec_matches_the_built_env(env):
    built = make_env(env)
    spec = env_spec(env)
    assert spec == (built.observation_space.shape[0], built.action_space.shape[0], tuple(built.reward_term_names))
    built.close()


@pytest.mark.parametrize("name", sorted(ENVS))
def test_every_env_has_a_default_config_that_selects_it(name, repo, monkeypatch):
    monkeypatch.chdir(repo)
    path = default_config_path(name)
    assert path is not None and Path(path).is_file()
    cfg = load_config(path, pipeline=True)
    assert cfg.env.name == name
    assert cfg.vr_mapping == ENVS[name].vr_mapping


def test_unknown_env_is_refused_everywhere():
    with pytest.raises(ValueError, match="known: toy, pick_lift"):
        default_config_path("kuavo_typo")
    with pytest.raises(ConfigError, match="env.name must be one of toy, pick_lift"):
        load_config(None, ["env.name=kuavo_typo"])


def test_a_fixed_action_size_is_enforced_by_the_schema():
    with pytest.raises(ConfigError, match="env pick_lift has a 4-dim action; set env.action_dim: 4"):
        load_config(None, ["env.name=pick_lift", "env.action_dim=14"])


def test_plan_starts_the_learner_first_and_the_actor_last():
    assert [s.role for s in plan_nodes(vr=False)] == ["learner", "env", "actor"]
    assert [s.role for s in plan_nodes(vr=True)] == ["learner", "env", "vr", "actor"]
    assert {s.package for s in NODES.values()} == {"kuavo_rl", "kuavo_vr_teleop"}


def test_node_parameters_carry_only_the_config_and_overrides(tmp_path, repo):
    params = node_parameters(str(repo / "config" / "toy_mse.yaml"), ["algo.lr=1e-3"], tmp_path / "run")
    assert set(params) == {"config_file", "overrides"}
    assert params["overrides"] == ["algo.lr=1e-3", f"run.run_dir={(tmp_path / 'run').resolve()}"]
    cfg = load_config(params["config_file"], params["overrides"] + vr_overrides("replay", "rec.jsonl"))
    assert cfg.run.run_dir == str((tmp_path / "run").resolve())
    assert (cfg.vr.source, cfg.vr.replay_loop) == ("replay", True) and Path(cfg.vr.replay_file).is_absolute()


def test_every_node_entry_point_is_installed(repo):
    """The plan's console scripts exist in setup.py of their package (ros2 launch starts those)."""
    for spec in NODES.values():
        setup_py = (repo / "src" / spec.package / "setup.py").read_text()
        assert f"{spec.executable} = {spec.module}:main" in setup_py


def test_cli_refuses_both_env_and_config(capsys, repo):
    from kuavo_rl.cli import main
    assert main(["train", "--env", "pick_lift", "--config", str(repo / "config" / "toy_mse.yaml")]) == 2
    assert "either --env" in capsys.readouterr().err


def test_cli_offers_every_command_and_env(capsys):
    from kuavo_rl.cli import build_parser
    text = build_parser().format_help()
    assert all(command in text for command in ("train", "sweep", "pipeline-check"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    train_help = capsys.readouterr().out
    assert all(name in train_help for name in ENVS)


def test_each_launch_gets_a_fresh_run_dir_with_a_run_key_and_localhost_discovery(tmp_path, monkeypatch):
    from kuavo_rl.launch_plan import discovery_environment, fresh_run_dir, prepare_run
    first = fresh_run_dir(str(tmp_path / "launch"))
    assert first.startswith(str(tmp_path / "launch-")) and not Path(first).exists()
    key = prepare_run(first)
    assert key == Path(first) / "run.key" and key.stat().st_mode & 0o077 == 0
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    assert discovery_environment() == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")  # a two-machine set-up keeps its choice
    assert discovery_environment() == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def test_env_stepper_refuses_a_step_after_the_episode_ended():
    import numpy as np

    from kuavo_rl.env_core import EnvStepper
    from kuavo_rl.protocol import ActionDecision
    stepper = EnvStepper(make_env(EnvConfig(action_dim=2, episode_steps=1)))
    first = stepper.reset()
    ended = stepper.apply(ActionDecision(first.episode_id, 0, np.zeros(2, np.float32)))
    assert ended.truncated
    with pytest.raises(ValueError, match="only a reset"):
        stepper.apply(ActionDecision(ended.episode_id, ended.step_index, np.zeros(2, np.float32)))
    assert stepper.current is ended  # nothing changed; a reset still works
    assert stepper.apply(ActionDecision(ended.episode_id, ended.step_index, np.zeros(2), reset=True)).step_index == 0


def test_plan_for_the_simulated_kuavo_and_the_two_machine_sides():
    assert [s.role for s in plan_nodes(vr=True, simulator=True)] == ["learner", "kuavo_sim", "env", "vr", "actor"]
    assert [s.role for s in plan_nodes(vr=True, simulator=True, side="robot")] == ["kuavo_sim", "env", "vr", "actor"]
    assert [s.role for s in plan_nodes(vr=True, simulator=True, side="learner")] == ["learner"]
    with pytest.raises(ValueError, match="side must be one of"):
        plan_nodes(vr=False, side="workstation")


def test_hold_report_says_why_repeats_sparsely_and_says_how_long():
    from kuavo_rl.env_core import HoldReport
    report = HoldReport(every_s=5.0)
    assert report.resume(0.0) is None  # nothing held
    assert report.hold("no state", 10.0) == "no state"
    assert report.hold("no state", 12.0) is None
    assert report.hold("no state", 15.5) == "no state (holding for 5.5 s)"
    assert report.hold("refused", 16.0) == "refused"  # a new reason is said at once; the hold goes on
    assert report.resume(17.0) == "resumed after holding for 7.0 s"
