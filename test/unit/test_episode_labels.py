"""The operator's episode labels through the actor and the env: applied once, only when signed by the
run, never under an e-stop, and ending the episode with the env's success/failure terms set."""
import numpy as np
import pytest

from helpers.cores import make_actor, small_cfg
from kuavo_rl.config import load_config
from kuavo_rl.env_core import EnvStepper
from kuavo_rl.envs import make_env
from kuavo_rl.protocol import (LABEL_FAILURE, LABEL_NONE, LABEL_SUCCESS, ActionDecision, EpisodeLabelInput,
                               InterventionInput, StepObservation)


def _observation(step: int, episode: int = 0, done: bool = False) -> StepObservation:
    return StepObservation(episode, step, np.zeros(3, np.float32), np.zeros(2, np.float32), 0.0, False, done)


def test_the_actor_sends_a_signed_label_once_with_the_next_action():
    actor = make_actor(small_cfg())
    actor.on_step(_observation(0))
    with pytest.raises(ValueError, match="not signed"):
        actor.on_label(EpisodeLabelInput(LABEL_SUCCESS, 7, "openxr", authenticated=False))
    assert actor.on_step(_observation(1)).label == LABEL_NONE
    assert actor.on_label(EpisodeLabelInput(LABEL_SUCCESS, 7, "openxr"))
    assert not actor.on_label(EpisodeLabelInput(LABEL_SUCCESS, 7, "openxr"))  # the repeat of the same label
    assert actor.on_step(_observation(2)).label == LABEL_SUCCESS
    assert actor.on_step(_observation(3)).label == LABEL_NONE  # once
    assert actor.on_label(EpisodeLabelInput(LABEL_FAILURE, 7, "keyboard"))  # ids are per source
    assert actor.on_step(_observation(4)).label == LABEL_FAILURE


def test_an_estop_wins_over_a_label_and_a_label_does_not_outlive_its_episode():
    actor = make_actor(small_cfg())
    actor.on_step(_observation(0))
    actor.on_intervention(InterventionInput(False, np.zeros(2, np.float32), 0.0, estop=True))
    assert not actor.on_label(EpisodeLabelInput(LABEL_SUCCESS, 1, "openxr"))
    assert actor.on_step(_observation(1)).label == LABEL_NONE
    actor = make_actor(small_cfg())
    actor.on_step(_observation(0))
    actor.on_label(EpisodeLabelInput(LABEL_FAILURE, 1, "openxr"))
    assert actor.on_step(_observation(1, done=True)).reset  # the episode ended before the label was sent
    assert actor.on_step(_observation(0, episode=1)).label == LABEL_NONE
    with pytest.raises(ValueError, match="neither success"):
        EpisodeLabelInput(0, 1, "openxr")


@pytest.mark.parametrize("label, term", [(LABEL_SUCCESS, "success"), (LABEL_FAILURE, "failure")])
def test_a_labelled_step_ends_the_kuavo_episode_with_that_term_and_its_reward(label, term):
    cfg = load_config(None, ["env.name=kuavo_sim", "env.action_dim=6", "env.kuavo.link=inprocess"])
    env = make_env(cfg.env, seed=0)
    stepper = EnvStepper(env, seed=0)
    first = stepper.reset()
    plain = stepper.apply(ActionDecision(first.episode_id, 0, np.zeros(6, np.float32)))
    assert not plain.terminated
    labelled = stepper.apply(ActionDecision(first.episode_id, 1, np.zeros(6, np.float32), label=label))
    names = stepper.reward_term_names
    assert labelled.terminated and not labelled.truncated
    assert labelled.reward_terms[names.index(term)] == 1.0
    assert labelled.reward_terms[names.index("failure" if term == "success" else "success")] == 0.0
    assert labelled.raw_reward == pytest.approx(env.reward_from_terms(labelled.reward_terms))
    assert labelled.raw_reward - plain.raw_reward == pytest.approx(30.0 if term == "success" else -10.0, abs=1.0)
    env.close()


def test_a_label_ends_a_toy_episode_which_has_no_success_terms():
    stepper = EnvStepper(make_env(small_cfg().env, seed=0))
    stepper.reset()
    labelled = stepper.apply(ActionDecision(0, 0, np.zeros(2, np.float32), label=LABEL_FAILURE))
    assert labelled.terminated and labelled.reward_terms.shape == (2,)


def test_an_action_command_with_an_unknown_label_is_refused():
    from kuavo_msgs.msg import ActionCommand
    from kuavo_rl.codec import action_from_msg
    msg = ActionCommand()
    msg.action, msg.label = [0.0, 0.0], 7
    with pytest.raises(ValueError, match="label 7"):
        action_from_msg(msg, 2)


def test_a_label_message_with_an_unknown_label_is_refused():
    from kuavo_msgs.msg import EpisodeLabel
    from kuavo_rl.codec import label_from_msg
    msg = EpisodeLabel()
    msg.label, msg.label_id, msg.source = 9, 1, "stranger"
    with pytest.raises(ValueError, match="neither success"):
        label_from_msg(msg)
