"""Link health between the two machines without ROS: when a peer counts as lost and for how long,
what the actor does meanwhile, what it reports, and the two sides' start-up rules."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.cores import make_actor, run_episode, small_cfg
from kuavo_rl.config import ConfigError, config_from_dict
from kuavo_rl.link_watch import LinkWatch, PeerLinks
from kuavo_rl.protocol import ActorStatusInfo


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_peer_is_lost_after_the_timeout_once_and_restored_with_the_outage_length():
    clock = Clock()
    watch = LinkWatch("the learner", 5.0, clock)
    clock.now += 60
    assert watch.check() is None and watch.describe() == "not heard yet"  # never heard: nothing to lose
    assert watch.heard() is None
    clock.now += 5.0
    assert watch.check() is None  # exactly the timeout is still fine
    clock.now += 0.2
    lost = watch.check()
    assert lost.lost and lost.silent_s == pytest.approx(5.2)
    assert lost.describe("the learner") == "link to the learner lost: nothing heard for 5.2 s"
    clock.now += 7.8
    assert watch.check() is None and watch.describe() == "LOST for 13 s"  # the loss is reported once
    restored = watch.heard()
    assert not restored.lost and restored.silent_s == pytest.approx(13.0)
    assert restored.describe("the learner") == "link to the learner restored after 13.0 s"
    assert watch.outages_s == [pytest.approx(13.0)] and not watch.lost
    assert watch.heard() is None and watch.describe() == "ok (1 outage(s), last 13.0 s)"


def status(actor_id: str, finished: bool = False) -> ActorStatusInfo:
    return ActorStatusInfo(actor_id, "abc", finished=finished)


def lost(links: PeerLinks) -> list[str]:
    return [peer for peer, watch in links.watches.items() if watch.lost]


def test_the_learner_tracks_each_actor_and_knows_when_all_have_finished():
    clock = Clock()
    links = PeerLinks(5.0, clock)
    assert not links.all_finished()  # no actor yet: nothing has finished
    links.heard("actor0", status("actor0"))
    links.heard("actor1", status("actor1", finished=True))
    assert not links.all_finished()
    clock.now += 3
    links.heard("actor1", status("actor1", finished=True))
    clock.now += 3
    assert [e.peer for e in links.check()] == ["actor0"] and lost(links) == ["actor0"]
    assert links.describe() == "link actor0 LOST for 6 s"  # only what needs attention
    links.heard("actor0", status("actor0", finished=True))  # a restarted or returning actor's latest status
    assert links.all_finished() and lost(links) == []
    clock.now += 60
    assert links.check() == []  # finished actors exit: their silence is no lost link


def test_the_actor_acts_on_or_holds_while_the_learner_is_lost_and_keeps_its_batches():
    for behaviour, holds in (("act", False), ("hold", True)):
        clock = Clock()
        cfg = small_cfg()
        cfg.actor.on_learner_lost = behaviour
        cfg.actor.sync_with_learner = False
        actor = make_actor(cfg, clock)
        actor.on_learner_status("learner-1")
        run_episode(actor, 0)
        actor.flush()
        clock.now += cfg.actor.learner_timeout_s + 1
        assert actor.check_learner_link().lost
        assert actor.waiting_for_learner() is holds
        report = actor.status()
        assert report.learner_link_lost and report.unpersisted_batches == len(actor.unacked) >= 1
        assert report.unpersisted_transitions == 5 and not report.finished
        assert report.waiting_for_learner is holds
        clock.now += 4
        restored = actor.on_learner_status("learner-1")
        assert restored.silent_s == pytest.approx(cfg.actor.learner_timeout_s + 5)
        assert not actor.waiting_for_learner() and actor.status().link_outages == 1


def test_a_learner_restart_seen_in_its_status_resends_what_it_had_not_persisted():
    clock = Clock()
    actor = make_actor(small_cfg(), clock)
    actor.on_learner_status("learner-1")
    run_episode(actor, 0)
    sent = actor.batches_to_send()
    assert sent and actor.batches_to_send() == []  # sent, awaiting acks
    actor.on_learner_status("learner-2")  # a new learner process: what the old one held is gone
    assert [b.sequence for b in actor.batches_to_send()] == [b.sequence for b in sent]


def test_actor_status_crosses_to_the_message_and_back_and_needs_an_actor_id():
    from kuavo_msgs.msg import ActorStatus
    from kuavo_rl.codec import actor_status_from_msg, actor_status_to_msg
    original = ActorStatusInfo("actor0", "inc", "run-1", env_steps=7, episodes=2, policy_version=3,
                               unpersisted_batches=4, unpersisted_transitions=200, waiting_for_learner=True,
                               estopped=True, finished=True, learner_link_lost=True, learner_silent_s=2.5,
                               link_outages=1, last_outage_s=12.5)
    assert actor_status_from_msg(actor_status_to_msg(ActorStatus(), original)) == original
    with pytest.raises(ValueError, match="actor_id"):
        actor_status_from_msg(actor_status_to_msg(ActorStatus(), ActorStatusInfo(" ", "inc")))


def test_link_settings_are_validated():
    with pytest.raises(ConfigError, match="actor.on_learner_lost must be act or hold"):
        config_from_dict({"actor": {"on_learner_lost": "freeze"}})
    for key in ("actor.learner_timeout_s", "learner.actor_timeout_s", "actor.status_period_s"):
        section, name = key.split(".")
        with pytest.raises(ConfigError, match=f"{key} must be > 0"):
            config_from_dict({section: {name: 0.0}})
    assert np.isfinite(config_from_dict({}).actor.learner_timeout_s)


def test_the_robot_side_needs_the_learner_sides_key_and_both_sides_discover_the_subnet(tmp_path, monkeypatch):
    from kuavo_rl.launch_plan import discovery_environment, prepare_run, side_overrides
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError, match="no run key at .*copy the workstation's <run_dir>/run.key"):
        prepare_run(run_dir, side="robot")
    assert not (run_dir / "run.key").exists()  # refused, and no key of its own made
    key = prepare_run(run_dir, side="learner")
    copied = tmp_path / "copy.key"
    copied.write_bytes(key.read_bytes())
    with pytest.raises(ConfigError, match="readable by other users: chmod 600"):
        prepare_run(tmp_path / "robot", key_file=str(copied), side="robot")  # scp made it 644, say
    copied.chmod(0o600)
    assert prepare_run(tmp_path / "robot", key_file=str(copied), side="robot") == copied
    assert copied.read_bytes() == key.read_bytes()
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    assert [discovery_environment(side)["ROS_AUTOMATIC_DISCOVERY_RANGE"] for side in ("all", "robot", "learner")] \
        == ["LOCALHOST", "SUBNET", "SUBNET"]
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SYSTEM_DEFAULT")  # the user's choice wins
    assert discovery_environment("robot")["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert side_overrides("learner") == ["learner.stop_when_actors_finish=true"] and side_overrides("robot") == []


@pytest.mark.parametrize("args, message", [
    (["--side", "robot", "--inprocess"], "cannot be --inprocess"),
    (["--side", "learner", "--vr"], "--vr belongs to the robot side"),
    (["--side", "robot"], "no run key at"),
])
def test_the_cli_refuses_side_misuse_with_a_clear_message(args, message, tmp_path, capsys):
    from kuavo_rl.cli import main
    assert main(["train", "--run-dir", str(tmp_path / "run"), *args]) == 2
    assert message in capsys.readouterr().err
