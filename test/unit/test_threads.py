"""The thread policy: no process of a run asks for more cores than it may have."""
from __future__ import annotations

import pytest

from kuavo_rl.config import ConfigError, load_config
from kuavo_rl.threads import CPU_SHARE_ENV, cpu_share, learner_threads, pool_worker_share


@pytest.mark.parametrize("share,expected", [(1, 1), (2, 1), (3, 1), (4, 2), (16, 14)])
def test_auto_leaves_a_core_each_to_the_env_and_the_actor(monkeypatch, share, expected):
    monkeypatch.setenv(CPU_SHARE_ENV, str(share))
    assert learner_threads(0) == expected


def test_a_configured_count_is_kept(monkeypatch):
    monkeypatch.setenv(CPU_SHARE_ENV, "2")
    assert learner_threads(3) == 3


def test_without_a_share_the_cores_this_process_may_use_count(monkeypatch):
    monkeypatch.delenv(CPU_SHARE_ENV, raising=False)
    import os
    assert cpu_share() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("bad", ["two", "0", "-1", "1.5"])
def test_a_bad_share_is_refused_by_name(monkeypatch, bad):
    monkeypatch.setenv(CPU_SHARE_ENV, bad)
    with pytest.raises(ValueError, match=CPU_SHARE_ENV):
        cpu_share()


def test_a_pool_divides_the_cores_among_its_runs(monkeypatch):
    monkeypatch.setenv(CPU_SHARE_ENV, "8")
    assert [pool_worker_share(jobs) for jobs in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]


def test_the_defaults_are_auto_for_the_learner_and_one_for_the_actor():
    cfg = load_config(None)
    assert (cfg.learner.torch_threads, cfg.actor.torch_threads) == (0, 1)
    with pytest.raises(ConfigError, match="learner.torch_threads"):
        load_config(None, ["learner.torch_threads=-1"])
    with pytest.raises(ConfigError, match="actor.torch_threads"):
        load_config(None, ["actor.torch_threads=0"])
