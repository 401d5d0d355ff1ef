"""learner.device: checked once at start-up against what this machine has; CPU behaviour unchanged."""
from __future__ import annotations

import pytest
import torch

from kuavo_rl.algos import make_backend
from kuavo_rl.algos.base import TrainBatch, resolve_device
from kuavo_rl.cli import main as cli_main
from kuavo_rl.config import ConfigError, load_config

HAS_CUDA = torch.cuda.is_available()


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "CPU", "mps"])
def test_a_device_name_outside_the_list_is_refused(bad):
    with pytest.raises(ConfigError, match="learner.device must be auto, cpu, cuda or cuda:N"):
        load_config(None, [f"learner.device={bad}"])


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu():
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_a_configuration_error_before_any_node_starts(tmp_path, capsys):
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        resolve_device("cuda:1")
    code = cli_main(["train", "--quiet", "--run-dir", str(tmp_path / "run"), "--set", "learner.device=cuda"])
    assert code == 2
    assert "learner.device cuda: torch sees no CUDA device here" in capsys.readouterr().err
    assert not (tmp_path / "run" / "logs").exists()  # no node was started


@pytest.mark.parametrize("backend", ["lerobot_sac", "sb3_sac"])
def test_on_the_cpu_batches_stay_put_and_published_weights_are_cpu_tensors(backend):
    cfg = load_config(None, [f"algo.backend={backend}", "algo.batch_size=8", "algo.hidden_dims=[16, 16]",
                             "learner.device=cpu"])
    model = make_backend(cfg.algo, 3, 2, seed=0, device=resolve_device(cfg.learner.device))
    batch = TrainBatch(torch.randn(8, 3), torch.rand(8, 2) * 2 - 1, -torch.rand(8), torch.randn(8, 3), torch.zeros(8))
    assert batch.to(torch.device("cpu")) is batch
    assert {"critic_loss", "actor_loss", "temperature"} <= set(model.update(batch))
    assert all(t.device.type == "cpu" for t in model.actor_state_dict().values())
