import pytest

from kuavo_rl.config import ConfigError, config_from_dict, load_config


def test_default_config_file_loads(default_config):
    cfg = load_config(default_config, pipeline=True)
    assert (cfg.env.action_dim, cfg.reward.type, cfg.algo.backend) == (14, "mse", "lerobot_sac")
    assert cfg.algo.part_lr("critic") == pytest.approx(1e-3)


@pytest.mark.parametrize("data, message", [
    ({"algo": {"learning_rate": 1e-3}}, "unknown key 'algo.learning_rate'"),
    ({"optimiser": {}}, "unknown section 'optimiser'"),
    ({"algo": {"batch_size": "big"}}, "expected an integer"),
    ({"algo": {"discount": 1.5}}, "algo.discount must be in [0, 1]"),
    ({"reward": {"type": "cosine"}}, "reward.type must be"),
    ({"algo": {"backend": "sb3_sac", "grad_clip_norm": 10}}, "cannot honour algo.grad_clip_norm"),
    ({"algo": {"backend": "sb3_sac", "critic_lr": 1e-3, "actor_lr": 3e-4}}, "one learning rate"),
    ({"algo": {"backend": "lerobot_sac", "ppo_n_steps": 128}}, "cannot honour algo.ppo_n_steps"),
    ({"algo": {"backend": "sb3_ppo", "target_entropy": -6.0}}, "cannot honour algo.target_entropy"),
    ({"algo": {"lr": float("nan")}}, "must be finite"),
])
def test_bad_config_is_refused_with_a_clear_message(data, message):
    with pytest.raises(ConfigError) as error:
        config_from_dict(data)
    assert message in str(error.value)


def test_pipeline_refuses_on_policy_backend():
    with pytest.raises(ConfigError, match="on-policy"):
        config_from_dict({"algo": {"backend": "sb3_ppo"}}, pipeline=True)


def test_backend_defaults_are_not_refused():
    # grad_clip_norm's default (lerobot's 40) is not an explicit request, so SB3 SAC accepts it.
    assert config_from_dict({"algo": {"backend": "sb3_sac"}}).algo.backend == "sb3_sac"
    assert config_from_dict({"algo": {"backend": "sb3_sac", "grad_clip_norm": 0}}).algo.grad_clip_norm == 0


def test_overrides_parse_yaml_values_and_float_strings(default_config):
    cfg = load_config(default_config, ["algo.lr=3e-4", "env.action_dim=2", "reward.clip=[-1, 0]",
                                       "algo.target_entropy=null"])
    assert cfg.algo.lr == pytest.approx(3e-4) and cfg.env.action_dim == 2
    assert cfg.reward.clip == [-1.0, 0.0] and cfg.algo.target_entropy is None
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(None, ["lr=1"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/x.yaml")


def test_every_shipped_experiment_file_loads():
    from helpers.pipeline import REPO
    files = sorted((REPO / "config").glob("*.yaml"))
    assert len(files) >= 5
    for path in files:
        load_config(path)  # raises ConfigError with the key named
