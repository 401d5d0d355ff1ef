"""A trained policy exported in lerobot's pretrained format: lerobot's own SACPolicy.from_pretrained
and processor pipeline, in another process, give the actions our actor gives."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from kuavo_rl.config import ConfigError, load_config

# lerobot only: load the export, normalise with its preprocessor, act deterministically (tanh of the mean).
LEROBOT_RUNNER = """
import sys, numpy as np, torch
from lerobot.policies.sac.modeling_sac import SACPolicy
from lerobot.processor import PolicyProcessorPipeline
out, observations, result = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
policy = SACPolicy.from_pretrained(out)
preprocess = PolicyProcessorPipeline.from_pretrained(out, config_filename="policy_preprocessor.json")
actions = []
for obs in observations:
    batch = preprocess({"observation.state": torch.as_tensor(obs)})
    with torch.no_grad():
        actions.append(torch.tanh(policy.actor({"observation.state": batch["observation.state"]})[2])[0].numpy())
np.save(result, np.stack(actions))
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short lerobot_sac run on the toy task with real observations, statistics normalisation."""
    from kuavo_rl.checkpoint import save_checkpoint
    from kuavo_rl.inprocess import train_inprocess
    run_dir = tmp_path_factory.mktemp("run")
    cfg = load_config(None, ["env.action_dim=3", "env.obs_mode=real_obs", "env.target=0.3", "env.episode_steps=50",
                             "run.total_env_steps=300", "algo.learning_starts=100", "algo.hidden_dims=[32, 32]",
                             "algo.batch_size=32"])
    core = train_inprocess(cfg, run_dir, quiet=True)
    save_checkpoint(core.state_dict(), run_dir / "checkpoints")
    return run_dir, cfg, core


def test_lerobot_loads_the_export_in_another_process_and_acts_as_our_actor(trained_run, tmp_path):
    from kuavo_rl.algos import make_actor_policy
    from kuavo_rl.export import export_pretrained
    run_dir, cfg, core = trained_run
    out = export_pretrained(run_dir, tmp_path / "export")
    assert {"config.json", "model.safetensors", "policy_preprocessor.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "kuavo_rl_export.json").read_text())["updates"] == core.updates > 0
    ours = make_actor_policy(cfg.algo, 4, 3, 0)
    ours.load_actor_state_dict(core.backend.actor_state_dict())
    assert not torch.allclose(ours.normalizer.std, torch.ones(4))  # a fitted normaliser is exported, not the identity
    observations = np.random.default_rng(0).uniform(-1, 1, (16, 4)).astype(np.float32)
    np.save(tmp_path / "obs.npy", observations)
    completed = subprocess.run([sys.executable, "-c", LEROBOT_RUNNER, str(out), str(tmp_path / "obs.npy"),
                                str(tmp_path / "actions.npy")], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    theirs = np.load(tmp_path / "actions.npy")
    expected = np.stack([ours.act(o, deterministic=True) for o in observations])
    np.testing.assert_allclose(theirs, expected, atol=1e-5)
    assert np.ptp(expected, axis=0).max() > 1e-3  # the actions depend on the observation


def test_export_refuses_what_lerobot_cannot_load(tmp_path):
    from kuavo_rl.export import export_pretrained
    with pytest.raises(ConfigError, match="no checkpoint"):
        export_pretrained(tmp_path, tmp_path / "out")
