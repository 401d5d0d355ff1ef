"""`kuavo-rl export`: a trained lerobot_sac policy in lerobot's own pretrained format, so that
lerobot's tools can run it on the robot.

The directory holds what `SACPolicy.save_pretrained` writes (`config.json`, `model.safetensors`:
actor, critics, temperature) and lerobot's pre- and post-processor pipelines
(`policy_preprocessor.json`, `policy_postprocessor.json` and their state). The run's observation
normalisation is lerobot's MEAN_STD step with our mean and std (a min/max normaliser is stored as its
centre and half-range, the same affine map); actions are in the env's [-1, 1] units, so the action
step is the identity. lerobot's step does not clip, ours clips at +-algo.observation_clip: the two
agree on every observation within that many standard deviations (half-ranges) of the data.

    policy = SACPolicy.from_pretrained(out)
    preprocess = PolicyProcessorPipeline.from_pretrained(out, config_filename="policy_preprocessor.json")
    batch = preprocess({"observation.state": obs})          # normalised, batched
    action = torch.tanh(policy.actor(batch)[2])             # the deterministic action (tanh of the mean)
"""
from __future__ import annotations

import json
from pathlib import Path

from kuavo_rl.algos.lerobot_sac import STATE_KEY, make_sac_policy
from kuavo_rl.checkpoint import load_latest
from kuavo_rl.config import ConfigError, ExperimentConfig, config_from_dict
from kuavo_rl.envs import env_spec, observation_names

EXPORT_INFO = "kuavo_rl_export.json"


def load_run(run_dir: Path) -> tuple[ExperimentConfig, dict]:
    """A run's configuration (as it trained) and its latest checkpoint."""
    state = load_latest(run_dir / "checkpoints")
    if state is None:
        raise ConfigError(f"{run_dir}: no checkpoint under {run_dir / 'checkpoints'} (a finished or running "
                          f"training run directory has one)")
    return config_from_dict(state["config"], saved=True), state


def export_pretrained(run_dir: str | Path, out: str | Path) -> Path:
    from lerobot.configs.types import NormalizationMode
    from lerobot.policies.sac.processor_sac import make_sac_pre_post_processors
    run_dir, out = Path(run_dir), Path(out)
    cfg, state = load_run(run_dir)
    if cfg.algo.backend != "lerobot_sac":
        raise ConfigError(f"{run_dir} trained {cfg.algo.backend}; lerobot's pretrained format holds lerobot_sac "
                          f"policies (an sb3_sac policy is saved by stable-baselines3 itself)")
    spec = env_spec(cfg.env)
    policy = make_sac_policy(cfg.algo, spec.observation_dim, spec.action_dim)
    policy.load_state_dict(state["backend"]["inner"]["policy"])
    normalizer = state["backend"]["observation_normalizer"]
    stats = {STATE_KEY: {"mean": normalizer["mean"].clone(), "std": normalizer["std"].clone()}}
    policy.config.normalization_mapping = {"STATE": NormalizationMode.MEAN_STD, "ACTION": NormalizationMode.IDENTITY}
    policy.config.dataset_stats = {STATE_KEY: {k: v.tolist() for k, v in stats[STATE_KEY].items()}}
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    preprocessor, postprocessor = make_sac_pre_post_processors(policy.config, dataset_stats=stats)
    preprocessor.save_pretrained(out)
    postprocessor.save_pretrained(out)
    (out / EXPORT_INFO).write_text(json.dumps({
        "run_dir": str(run_dir), "updates": state["counters"]["updates"], "env": cfg.env.name,
        "observation_names": observation_names(cfg.env), "observation_clip": float(normalizer["clip"]),
        "normalization": cfg.algo.observation_normalization}, indent=1))
    return out
