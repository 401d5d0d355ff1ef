"""The quirks: imitations of other set-ups' behaviours, each doing exactly what its name says on a tiny
case, off by default, and refused where a backend cannot honour them."""
import numpy as np
import pytest

from helpers.cores import TERMS, make_actor, run_episode, small_cfg
from kuavo_rl.buffer import ReplayBuffer, link_episode_ends
from kuavo_rl.config import ConfigError, config_from_dict
from kuavo_rl.learner_core import LearnerCore
from kuavo_rl.protocol import TransitionArrays


def _quirk_cfg(backend="lerobot_sac", **quirks):
    cfg = small_cfg(backend=backend)
    return config_from_dict({**cfg.to_dict(), "quirks": quirks}, saved=True)


def _train_episodes(cfg, episodes, per_episode_delivery):
    """Run `episodes` 5-step episodes (each truncated by the time limit) and ingest them, episode by episode
    (every episode end is the last transition of a batch) or all at once (ends fall inside batches)."""
    actor, learner = make_actor(cfg), LearnerCore(cfg, 3, 2, TERMS)
    for episode in range(episodes):
        run_episode(actor, episode)
        if per_episode_delivery:
            for batch in actor.batches_to_send(0.0):
                learner.ingest(batch)
    for batch in actor.batches_to_send(0.0):
        learner.ingest(batch)
    stored = learner.buffers.online.contents()
    order = np.argsort(stored.sequences)
    return stored.select(order)


def test_quirks_are_off_by_default_and_the_time_limit_then_bootstraps():
    cfg = small_cfg()
    assert cfg.quirks.active() == [] and cfg.quirks_summary() == ""
    stored = _train_episodes(cfg, 2, per_episode_delivery=False)
    assert len(stored) == 10 and not stored.terminated.any()  # truncations are not terminal
    ends = np.flatnonzero(stored.observations[:, 0] == 4)  # the last step of each episode starts from obs 4
    assert np.all(stored.next_observations[ends] == 5)  # its own next observation


def test_time_limit_as_terminal_marks_exactly_the_time_limit_steps_terminal():
    stored = _train_episodes(_quirk_cfg(time_limit_as_terminal=True), 3, per_episode_delivery=False)
    assert len(stored) == 15
    assert stored.terminated.tolist() == [False] * 4 + [True] + [False] * 4 + [True] + [False] * 4 + [True]
    assert np.all(stored.next_observations[stored.terminated] == 5)  # only the flag changes


@pytest.mark.parametrize("per_episode_delivery", [True, False], ids=["end-closes-a-batch", "end-inside-a-batch"])
def test_bootstrap_across_episodes_links_each_end_to_the_next_episodes_first_observation(per_episode_delivery):
    stored = _train_episodes(_quirk_cfg(bootstrap_across_episodes=True), 3, per_episode_delivery)
    ends = [4, 9, 14]
    assert not stored.terminated.any()  # the time limit still bootstraps, now from the wrong state
    for end in ends[:2]:
        assert np.all(stored.next_observations[end] == stored.observations[end + 1])  # the next episode's first
        assert np.all(stored.observations[end + 1] == 0)
    assert np.all(stored.next_observations[14] == 5)  # no next episode yet: its own next observation
    inside = [i for i in range(15) if i not in ends]
    assert np.all(stored.next_observations[inside] == stored.observations[inside] + 1)  # untouched


def test_both_buffer_quirks_together_are_lerobots_buffer_fed_by_an_env_that_terminates_at_the_time_limit():
    stored = _train_episodes(_quirk_cfg(time_limit_as_terminal=True, bootstrap_across_episodes=True), 2, True)
    assert stored.terminated.tolist() == [False] * 4 + [True] + [False] * 4 + [True]
    assert np.all(stored.next_observations[4] == 0)


def _transitions(first: int, n: int) -> TransitionArrays:
    """n one-dimensional transitions whose observation, next observation - 1 and sequence are first, first+1, ..."""
    seq = np.arange(first, first + n)
    column = seq[:, None].astype(np.float32)
    return TransitionArrays(observations=column, actions=np.zeros((n, 1), np.float32),
                            reward_terms=np.zeros((n, 1), np.float32), raw_rewards=np.zeros(n, np.float32),
                            next_observations=column + 1, terminated=np.zeros(n, bool),
                            intervention=np.zeros(n, bool), sequences=seq.astype(np.uint64))


def test_linking_never_rewrites_a_slot_that_now_holds_another_transition():
    batch = _transitions(0, 4)
    linked = link_episode_ends(batch.observations, batch.next_observations, np.array([False, True, False, True]))
    assert linked[:, 0].tolist() == [1, 2, 3, 4]  # row 1's successor is row 2; row 3's is not known yet
    linked = link_episode_ends(batch.observations, batch.next_observations + 10, np.array([True, False, True, True]))
    assert linked[:, 0].tolist() == [1, 12, 3, 14]  # ends 0 and 2 take their successors; 3 is the last
    buffer = ReplayBuffer(2, 1, 1, 1)
    slots = buffer.add(_transitions(0, 2))
    buffer.add(_transitions(2, 2))  # the ring wrapped: both slots hold newer transitions
    buffer.set_next_observation(int(slots[1]), 1, np.array([-7.0], np.float32))
    assert -7.0 not in buffer.contents().next_observations
    buffer.set_next_observation(int(slots[1]), 3, np.array([-7.0], np.float32))
    assert buffer.contents().next_observations[:, 0].tolist() == [3.0, -7.0]
    assert buffer.add(_transitions(4, 3)).tolist() == [-1, 0, 1]  # more than fits: the first is dropped


def test_temperature_lr_from_critic_uses_the_critic_rate_for_the_temperature():
    base = {**small_cfg().to_dict()}
    base["algo"] = {**base["algo"], "critic_lr": 1e-3, "temperature_lr": 3e-4}
    plain = LearnerCore(config_from_dict(base, saved=True), 3, 2, TERMS)
    assert plain.backend.inner.optimizers["temperature"].param_groups[0]["lr"] == pytest.approx(3e-4)
    coupled_cfg = config_from_dict({**base, "quirks": {"temperature_lr_from_critic": True}}, saved=True)
    coupled = LearnerCore(coupled_cfg, 3, 2, TERMS)
    optimizers = coupled.backend.inner.optimizers
    assert optimizers["temperature"].param_groups[0]["lr"] == pytest.approx(1e-3)
    assert optimizers["critic"].param_groups[0]["lr"] == pytest.approx(1e-3)
    assert optimizers["actor"].param_groups[0]["lr"] == pytest.approx(base["algo"]["lr"])
    assert "temperature_lr_from_critic" in coupled_cfg.quirks_summary()
    assert "0.0003 is not used" in coupled_cfg.quirks_summary()
    assert coupled_cfg.algo.temperature_lr == 3e-4  # the configuration itself is not rewritten


def test_a_quirk_a_backend_cannot_honour_is_refused():
    with pytest.raises(ConfigError, match="sb3_ppo cannot honour quirks.bootstrap_across_episodes"):
        config_from_dict({"algo": {"backend": "sb3_ppo"}, "quirks": {"bootstrap_across_episodes": True}})
    with pytest.raises(ConfigError, match="sb3_ppo cannot honour quirks.temperature_lr_from_critic"):
        config_from_dict({"algo": {"backend": "sb3_ppo"}, "quirks": {"temperature_lr_from_critic": True}})
    with pytest.raises(ConfigError, match="sb3_sac cannot honour quirks.temperature_lr_from_critic"):
        config_from_dict({"algo": {"backend": "sb3_sac"}, "quirks": {"temperature_lr_from_critic": True}})
    with pytest.raises(ConfigError, match="unknown key 'quirks.no_such_quirk'"):
        config_from_dict({"quirks": {"no_such_quirk": True}})
    with pytest.raises(ConfigError, match="expected true/false"):
        config_from_dict({"quirks": {"time_limit_as_terminal": "yes"}})
    config_from_dict({"algo": {"backend": "sb3_ppo"}, "quirks": {"time_limit_as_terminal": True}})


def test_ppo_time_limit_as_terminal_reports_the_time_limit_as_a_termination_in_training_only():
    from kuavo_rl.diagnostics.ppo import make_shaped_env
    cfg = config_from_dict({"env": {"action_dim": 2, "episode_steps": 3}, "algo": {"backend": "sb3_ppo"},
                            "quirks": {"time_limit_as_terminal": True}})

    def flags(env):
        env.reset(seed=0)
        return [env.step(np.zeros(2, np.float32))[2:4] for _ in range(3)]

    assert flags(make_shaped_env(cfg)) == [(False, False), (False, False), (True, False)]
    assert flags(make_shaped_env(cfg, training=False)) == [(False, False), (False, False), (False, True)]


def test_a_run_with_quirks_on_says_so_in_its_summary(tmp_path):
    from kuavo_rl.cli import main
    assert main(["train", "--inprocess", "--quiet", "--run-dir", str(tmp_path), "--set", "env.action_dim=2",
                 "--set", "run.total_env_steps=60", "--set", "algo.learning_starts=50",
                 "--set", "env.episode_steps=20", "--set", "quirks.time_limit_as_terminal=true"]) == 0
    summary = (tmp_path / "summary.md").read_text()
    assert "Quirks on (imitated on purpose, not the correct behaviour): time_limit_as_terminal." in summary
