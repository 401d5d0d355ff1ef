"""Operator takeover of the simulated Kuavo, end to end: a recorded controller stream (both controllers
moved toward each other while the clutch is held, as an operator squeezing the box between the
robot's palms) is replayed by the VR teleop node into the whole pipeline (learner, kuavo_sim, env
bridge, vr, actor). The test process listens on the robot's own topics and on the env protocol:

- the takeover moves the simulated hands the way the controllers moved (robot axes);
- the takeover transitions are flagged and reach the learner's offline buffer;
- when a takeover ends, the bridge re-syncs its commanded targets to the measured hands: the palms
  are pushed into the box, so the commanded targets run far ahead of the measured hands, yet the
  first policy command after the takeover is one step from where the hands are.

Timing: the replay runs on the wall clock and the lockstep pipeline at whatever rate the machine
allows (20 to 150 steps/s measured), so the takeover is a constant-rate command that ends in the
same place whatever its length in steps: the commanded targets run to the midline (the workspace
edge) and to the top of the test's workspace, which is set at the box's height.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

import kuavo_msgs.msg as msgs
from helpers.pipeline import REPO
from kuavo_rl import topics
from kuavo_rl.config import load_config
from kuavo_rl.kuavo.settings import DEFAULT_OBSERVATION_LAYOUT, OBSERVATION_BLOCKS
from kuavo_rl.kuavo.task import HandPair, Workspace
from kuavo_vr_teleop.controller import ControllerFrame, HandState
from kuavo_vr_teleop.sources import Recorder

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

CONFIG = REPO / "config" / "kuavo_sim_box_lift.yaml"
# The default observation plus the commanded targets: each observation then names the command the
# step before it sent, which ties the command topic to the env protocol's steps.
LAYOUT = [*DEFAULT_OBSERVATION_LAYOUT, "hand_left_target_base", "hand_right_target_base"]
OVERRIDES = [
    "run.total_env_steps=400", "env.episode_steps=200", "algo.learning_starts=100", "algo.batch_size=64",
    "algo.hidden_dims=[64, 64]", "actor.eval_every_episodes=0", "actor.final_eval_episodes=0",
    f"env.kuavo.observation_layout=[{', '.join(LAYOUT)}]",
    # The hands stay at the box's height (its centre is at base z 0, its top at 0.1 m; palms at
    # 0 to 0.12 m meet its sides): commanded targets never above 0.06 m, start poses at 0 to 0.06 m
    # and at least 0.25 m forward (further back, a squeeze pushes the box forward out of the palms).
    "env.kuavo.workspace_high=[0.45, 0.5, 0.06]", "env.kuavo.start_low=[0.25, 0.3, 0.0]",
    "env.kuavo.start_high=[0.35, 0.45, 0.06]",
]
SLACK_M = 0.002
DEEP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE)

# The recording, in the OpenXR stage frame (x right, y up, -z forward; the operator faces the robot's
# forward direction). Engaged, each controller moves 5 cm toward the other and 1.5 cm up: with the
# default 0.05 m per action unit, full speed toward the robot's midline and 0.3 of it up.
HOME = {"left": (-0.2, 1.0, -0.3), "right": (0.2, 1.0, -0.3)}
MOVE = {"left": (0.05, 0.015, 0.0), "right": (-0.05, 0.015, 0.0)}
RELEASED_S, ENGAGED_S, RAMP_S, RATE_HZ = 0.4, 0.8, 0.2, 50.0


def stage_to_robot(vector) -> np.ndarray:
    """OpenXR stage axes (x right, y up, -z forward) -> robot base axes (x forward, y left, z up)."""
    x, y, z = vector
    return np.array([-z, -x, y])


def record_takeovers(path) -> None:
    """One cycle (replayed in a loop): clutch released, then held while both controllers move."""
    with Recorder(path, "scripted") as recorder:
        for i in range(int((RELEASED_S + ENGAGED_S) * RATE_HZ)):
            t = i / RATE_HZ
            engaged = t >= RELEASED_S
            ramp = min(1.0, (t - RELEASED_S) / RAMP_S) if engaged else 0.0
            hands = {side: HandState(position=tuple(np.add(HOME[side], np.multiply(MOVE[side], ramp))),
                                     pose_valid=True, squeeze=1.0 if engaged and side == "right" else 0.0)
                     for side in ("left", "right")}
            recorder.write(ControllerFrame(t, hands["left"], hands["right"]))


class Listener:
    """What the test needs from the domain: env steps by (episode, step), topics in arrival order."""

    def __init__(self, context, cfg):
        self.node = rclpy.create_node("takeover_listener", context=context)
        self.executor = rclpy.executors.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.observations: dict[tuple[int, int], np.ndarray] = {}
        self.actions: dict[tuple[int, int], msgs.ActionCommand] = {}
        self.takeover_actions: list[np.ndarray] = []  # what the VR node published while engaged
        self.commands: list[msgs.TwoArmHandPoseCmd] = []
        self.hands: dict[str, list[np.ndarray]] = {"left": [], "right": []}
        sub = self.node.create_subscription
        sub(msgs.EnvObservation, topics.OBSERVATION,
            lambda m: self.observations.setdefault((m.episode_id, m.step_index), np.array(m.observation)), DEEP)
        sub(msgs.ActionCommand, topics.ACTION, lambda m: self.actions.setdefault((m.episode_id, m.step_index), m), DEEP)
        sub(msgs.Intervention, topics.INTERVENTION,
            lambda m: m.active and self.takeover_actions.append(np.array(m.action, np.float32)), DEEP)
        sub(msgs.TwoArmHandPoseCmd, cfg.hand_pose_cmd_topic, self.commands.append, DEEP)
        for side, topic in (("left", cfg.left_hand_pose_topic), ("right", cfg.right_hand_pose_topic)):
            sub(PoseStamped, topic, lambda m, side=side: self.hands[side].append(
                np.array([m.pose.position.x, m.pose.position.y, m.pose.position.z])), DEEP)


def block_slices(layout) -> dict[str, slice]:
    slices, start = {}, 0
    for name in layout:
        slices[name] = slice(start, start + OBSERVATION_BLOCKS[name])
        start += OBSERVATION_BLOCKS[name]
    return slices


def takeover_windows(actions) -> list[tuple[int, int, int]]:
    """(episode, first step, last step) of each run of consecutive takeover steps within an episode."""
    windows: list[list[int]] = []
    for episode, step in sorted(actions):
        msg = actions[(episode, step)]
        if not msg.intervention or msg.reset:
            continue
        if windows and windows[-1][0] == episode and windows[-1][2] == step - 1:
            windows[-1][2] = step
        else:
            windows.append([episode, step, step])
    return [tuple(w) for w in windows]


def on_topic(stream, value, what: str) -> np.ndarray:
    """The message of `stream` (rows of values) that carried `value` (float32 in the observation)."""
    rows = np.asarray(stream)
    hits = np.flatnonzero(np.abs(rows - value).max(axis=1) < 1e-6) if len(rows) else []
    assert len(hits), f"{what} {np.round(value, 4)} was never published"
    return rows[hits[0]]


def beside_box(cfg, hands: HandPair, box: np.ndarray) -> bool:
    """Both palms at the box's sides (its half width, -3/+6 cm) and within its height."""
    half = np.asarray(cfg.box_size) / 2
    return all(half[1] - 0.03 <= sign * (p[1] - box[1]) <= half[1] + 0.06 and abs(p[2] - box[2]) < half[2]
               for sign, p in ((1, hands.left), (-1, hands.right)))


def cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def test_replayed_takeover_drives_the_simulated_kuavo_and_the_policy_resumes_from_the_measured_hands(
        tmp_path, rclpy_context):
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.launch_plan import vr_overrides
    from kuavo_rl.supervisor import run_pipeline
    recording = tmp_path / "takeovers.jsonl"
    record_takeovers(recording)
    overrides = [*OVERRIDES, *vr_overrides("replay", str(recording))]
    cfg = load_config(CONFIG, overrides).env.kuavo
    base, step_m, workspace = np.asarray(cfg.base_position), cfg.ee_step_m, Workspace(cfg)
    listener = Listener(rclpy_context, cfg)
    outcome = {}
    pipeline = threading.Thread(target=lambda: outcome.update(codes=run_pipeline(
        tmp_path / "run", str(CONFIG), overrides, timeout_s=300, quiet=True, vr=True, simulator=True)))
    pipeline.start()
    while pipeline.is_alive():
        listener.executor.spin_once(timeout_sec=0.05)
    listener.node.destroy_node()
    assert "codes" in outcome, "the pipeline failed; see the logs under the run dir"

    obs, actions = listener.observations, listener.actions
    blocks = block_slices(LAYOUT)
    hand_world = {side: blocks[f"hand_{side}_world"] for side in ("left", "right")}
    target = {side: blocks[f"hand_{side}_target_base"] for side in ("left", "right")}
    assert listener.commands and all(c.frame == cfg.command_frame == 2 for c in listener.commands)
    commanded = np.array([[*c.hand_poses.left_pose.pos_xyz, *c.hand_poses.right_pose.pos_xyz]
                          for c in listener.commands])

    def targets_in(key) -> np.ndarray:
        """The targets (base frame, left then right) the step leading to observation `key` commanded."""
        return np.concatenate([obs[key][target["left"]], obs[key][target["right"]]])

    def command_after(key) -> np.ndarray:
        """The same targets as the command topic carried them."""
        return on_topic(commanded, targets_in(key), f"the command before observation {key}")

    def hands_at(key) -> HandPair:
        """The hands of observation `key` as the robot reported them (world), in the command's torso frame."""
        return HandPair(*(on_topic(listener.hands[side], obs[key][hand_world[side]], f"{side} hand") - base
                          for side in ("left", "right")))

    windows = takeover_windows(actions)
    assert len(windows) >= 2, f"takeover windows {windows}"
    toward = {side: stage_to_robot(MOVE[side]) for side in ("left", "right")}  # the controllers' motion, robot axes
    assert toward["left"][1] < 0 < toward["right"][1]  # toward each other: toward the robot's midline

    def along(delta, side) -> bool:
        """Along the controllers' motion or held (by the workspace), never against it, and not at all
        forward or back (the controllers did not move that way)."""
        return abs(delta[0]) < 1e-6 and bool(np.all(delta[1:] * np.sign(toward[side][1:]) > -1e-6))

    # 1. The takeover moves the hands the way the controllers moved. Every takeover command (on the
    # command topic) moves the targets along the controllers' motion, from the previous targets (or from
    # the measured hands, which a hold would re-sync them to first).
    moved = []
    for episode, first, last in windows:
        for step in range(first, last + 1):
            if (episode, step) in obs and (episode, step + 1) in obs:
                sent, before = command_after((episode, step + 1)), targets_in((episode, step))
                hands = workspace.clamp(hands_at((episode, step)))
                for side, delta, resynced in zip(("left", "right"), np.split(sent - before, 2),
                                                 np.split(sent - np.concatenate([hands.left, hands.right]), 2)):
                    assert along(delta, side) or along(resynced, side), (side, episode, step, delta, resynced)
        # Measured hands (on /fk/eef_pose_*): the displacement over the window.
        if (episode, first) in obs and (episode, last + 1) in obs:
            start, end = hands_at((episode, first)), hands_at((episode, last + 1))
            moved.append({"left": end.left - start.left, "right": end.right - start.right})
    free = [m for m in moved if all(m[side] @ toward[side] / np.linalg.norm(toward[side]) >= 0.05
                                    and cos(m[side], toward[side]) >= 0.8 for side in ("left", "right"))]
    assert free, ("no takeover moved both hands 5 cm the way the controllers moved: "
                  f"{[{s: np.round(m[s], 3).tolist() for s in m} for m in moved]}")

    # 2. The takeover transitions are flagged and in the learner's offline buffer, with the operator's
    # actions. The learner's own takeover recording (kept in its checkpoint, keyed by episode and step) is
    # the complete record; the listener may miss the first action commands (DDS discovers the actor in the
    # test process later than in the env node when the machine is busy), never one after its first;
    # likewise the first observations.
    state = load_latest(tmp_path / "run" / "checkpoints")
    offline, online = state["buffers"]["offline"], state["buffers"]["online"]
    recorded = state["recording"]["rows"]
    assert state["counters"]["intervention_transitions"] == offline["size"] == len(recorded["actions"]) > 20
    assert recorded["intervention"].all()
    assert np.allclose(offline["observations"], recorded["observations"])
    assert np.allclose(offline["actions"], recorded["actions"])
    assert set(online["sequences"][online["intervention"]].tolist()) == set(offline["sequences"].tolist())
    first_seen, last_observation = max(min(actions), min(obs)), max(obs)  # the run's last one is not answered
    unseen = [key for key in sorted(obs) if first_seen <= key < last_observation and key not in actions]
    assert not unseen, f"the test's listener lost action commands after its first {first_seen}: {unseen[:10]}"
    # A transition is keyed by the step of its next observation: the action of step s is in row (episode, s + 1).
    recorded_rows = {(int(e), int(s) - 1): i for i, (e, s) in
                     enumerate(zip(recorded["episode_ids"], recorded["step_indices"])) if (e, s - 1) >= first_seen}
    taken = {key for key, msg in actions.items() if key >= first_seen and msg.intervention and not msg.reset}
    assert set(recorded_rows) == taken, (sorted(set(recorded_rows) ^ taken)[:10], first_seen)
    human = np.unique(np.round(np.stack(listener.takeover_actions), 5), axis=0)
    for key, row in recorded_rows.items():
        action = recorded["actions"][row]
        assert np.allclose(action, actions[key].action, atol=1e-6), (key, action)  # the action the env was sent
        assert np.min(np.abs(human - action).max(axis=1)) < 1e-4, action  # an action the VR node published
        assert key in obs, f"the test's listener lost observation {key} after its first {first_seen}"
        assert np.allclose(recorded["observations"][row], obs[key], atol=1e-6), key

    # 3. Re-sync: the first policy command after each takeover is one policy step from the measured hands
    # (clamped into the workspace, as every command is), however far ahead the takeover's targets ran.
    ends = []
    for episode, _first, last in windows:
        first_policy = (episode, last + 1)
        msg = actions.get(first_policy)
        if msg is None or msg.reset or msg.intervention or (episode, last + 2) not in obs or first_policy not in obs:
            continue  # the episode ended with the takeover
        measured = hands_at(first_policy)  # what the policy answered: the hands after the last takeover step
        safe = workspace.clamp(measured)  # where the bridge's clamp puts a target at the measured hands
        hands, safe = np.concatenate([measured.left, measured.right]), np.concatenate([safe.left, safe.right])
        ends.append({
            "step": first_policy,
            "gap": np.abs(command_after((episode, last + 2)) - safe).max(),
            "lead": np.abs(targets_in(first_policy) - hands).max(),  # the last takeover target vs the hands
            "outside_workspace": np.abs(safe - hands).max(),
            "beside_box": beside_box(cfg, measured, obs[first_policy][blocks["box_position"]] - base),
        })
    report = [{k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in end.items()} for end in ends]
    print(f"the listener saw every step from {first_seen}\ntakeover windows {windows}\nends of takeovers {report}")
    assert ends, f"no takeover ended inside an episode: windows {windows}"
    assert all(end["gap"] <= step_m + SLACK_M for end in ends), \
        f"a policy command after a takeover was not one step from the measured hands: {report}"
    # The palms were pushed into the box (at its sides, at its height): the takeover's targets ran ahead of
    # the hands by several steps there, so a stale target would have failed the check above.
    assert any(end["lead"] >= 0.05 and end["beside_box"] for end in ends), \
        f"no takeover pushed the palms into the box ahead of the hands: {report}"
