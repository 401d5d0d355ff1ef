"""A scripted approach-squeeze-lift for the dual-arm box task, seen and driven exactly as a policy.

Input: the 32-dim observation; output: the 6-dim end-effector-delta action in [-1, 1]
(each value times step_size_m is added to the *commanded* hand target). The controller integrates
its own copy of the commanded targets (it cannot observe them), starting from the measured hand
positions at the first step of an episode (after reset(), or when the measured hands are more than
new_episode_jump_m from its commanded targets: a reset it was not told about, or a takeover), and
steers them through waypoints (all clamped to the env's workspace, which it mirrors):

    pregrasp  beside the box sides, clearance_m outside them, grasp height (2 cm above the centre)
    close     straight in, palms squeeze_depth_m inside the box faces: the grip force is the arm's
              stiffness times that depth (about 12.5 N per cm per palm in our sim). A 2 kg box at
              friction 0.3 needs 2 kg * 9.81 / (2 * 0.3) = 33 N per palm, so the default is 4 cm
              (about 50 N); 1 cm (13 N) holds light or grippy boxes only
    squeeze   wait settle_steps for the grip force to build
    lift      raise both targets by lift_height_m, slower than the approach
    hold      keep still

Observation layout (float32, 32): [0:3] left hand world, [3:6] right hand world, [6:20] 14 arm joints,
[20:23] base position world, [23:26] left hand base frame, [26:29] right hand base frame,
[29:32] box centre world. Action: [dx_l, dy_l, dz_l, dx_r, dy_r, dz_r].
"""

from __future__ import annotations

import numpy as np

from kuavo_rl.kuavo.model import BOX_SIZE, HAND_WORKSPACE_BASE

OBSERVATION_DIM, ACTION_DIM = 32, 6
LEFT_HAND, RIGHT_HAND, BASE, BOX = slice(0, 3), slice(3, 6), slice(20, 23), slice(29, 32)
PHASES = ("pregrasp", "close", "squeeze", "lift", "hold")


def _farthest(points: np.ndarray, targets: np.ndarray) -> float:
    """The larger of the two hands' distances (m) between (2, 3) arrays."""
    return float(np.max(np.linalg.norm(points - targets, axis=1)))


class ScriptedBoxLift:
    def __init__(
        self,
        box_size=tuple(BOX_SIZE),
        squeeze_depth_m: float = 0.04,
        lift_height_m: float = 0.15,
        step_size_m: float = 0.01,
        grasp_height_m: float = 0.02,  # above the box centre: the palms' grip line above its centre of mass
        clearance_m: float = 0.06,  # pre-grasp gap outside each box side (covers a box yawed 10 deg)
        approach_speed: float = 1.0,  # action magnitude per axis while approaching (1 = step_size_m per step)
        close_speed: float = 0.5,
        lift_speed: float = 0.5,
        settle_steps: int = 5,
        arrive_tolerance_m: float = 0.015,  # measured hands this close to the pre-grasp before going in
        new_episode_jump_m: float = 0.15,  # measured hands this far from our commanded target: a new episode
        workspace_base: dict | None = HAND_WORKSPACE_BASE,  # the env's clamp, mirrored in our integration
        action_noise: float = 0.0,  # std of Gaussian noise on every action value (varied demonstrations)
        seed: int | None = None,  # of the noise
    ) -> None:
        self.half_size = np.asarray(box_size, dtype=float) / 2
        self.squeeze_depth_m = squeeze_depth_m
        self.lift_height_m = lift_height_m
        self.step_size_m = step_size_m
        self.grasp_height_m = grasp_height_m
        self.clearance_m = clearance_m
        self.approach_speed = approach_speed
        self.close_speed = close_speed
        self.lift_speed = lift_speed
        self.settle_steps = settle_steps
        self.arrive_tolerance_m = arrive_tolerance_m
        self.new_episode_jump_m = new_episode_jump_m
        self.workspace_base = workspace_base
        self.action_noise = action_noise
        self.rng = np.random.default_rng(seed)
        # A noisy step lands near, not on, its waypoint: within 3 standard deviations counts as arrived.
        self.waypoint_tolerance_m = max(1e-4, 3 * action_noise * step_size_m)
        self.reset()

    def reset(self) -> None:
        """Start of an episode: the next observation's hand positions become the commanded targets."""
        self.phase = PHASES[0]
        self.commanded: np.ndarray | None = None  # (2, 3) left, right, world
        self._grasp: np.ndarray | None = None  # (2, 3) squeeze targets, fixed when closing starts
        self._lifted: np.ndarray | None = None  # (2, 3) the same raised by lift_height_m
        self._steps_in_phase = 0

    def __call__(self, observation) -> np.ndarray:
        return self.act(observation)

    def act(self, observation) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float64).reshape(-1)
        if obs.shape != (OBSERVATION_DIM,):
            raise ValueError(f"observation must have {OBSERVATION_DIM} values, got {obs.size}")
        measured = np.stack([obs[LEFT_HAND], obs[RIGHT_HAND]])
        if self.commanded is None or _farthest(measured, self.commanded) > self.new_episode_jump_m:
            self.reset()
            self.commanded = measured.copy()
        waypoint, speed = self._plan(measured, obs[BOX], obs[BASE])
        action = np.concatenate([self._toward(hand, waypoint[hand], speed) for hand in (0, 1)])
        if self.action_noise > 0:
            action = np.clip(action + self.rng.normal(0.0, self.action_noise, action.shape), -1.0, 1.0)
        self._integrate(action, obs[BASE])
        self._steps_in_phase += 1
        return action.astype(np.float32)

    # -- phases ----------------------------------------------------------------------------------
    def _plan(self, measured: np.ndarray, box: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, float]:
        """This step's waypoints (2, 3) and speed; advances the phase when the current one is done."""
        if self.phase == "pregrasp":
            target = self._clamp(self._beside_box(box, self.half_size[1] + self.clearance_m), base)
            arrived = self._reached(target) and _farthest(measured, target) < self.arrive_tolerance_m
            if not arrived:
                return target, self.approach_speed
            self._grasp = self._clamp(self._beside_box(box, self.half_size[1] - self.squeeze_depth_m), base)
            self._lifted = self._clamp(self._grasp + np.array([0.0, 0.0, self.lift_height_m]), base)
            self._enter("close")
        if self.phase == "close":
            if not self._reached(self._grasp):
                return self._grasp, self.close_speed
            self._enter("squeeze")
        if self.phase == "squeeze":
            if self._steps_in_phase < self.settle_steps:
                return self._grasp, 0.0
            self._enter("lift")
        if self.phase == "lift":
            if not self._reached(self._lifted):
                return self._lifted, self.lift_speed
            self._enter("hold")
        return self._lifted, 0.0

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self._steps_in_phase = 0

    def _beside_box(self, box: np.ndarray, offset_y: float) -> np.ndarray:
        """Hand points at the box's x, offset_y from its centre on either side, at grasp height."""
        left = box + np.array([0.0, offset_y, self.grasp_height_m])
        right = box + np.array([0.0, -offset_y, self.grasp_height_m])
        return np.stack([left, right])

    def _reached(self, target: np.ndarray) -> bool:
        return bool(np.all(np.abs(self.commanded - target) < self.waypoint_tolerance_m))

    # -- actions ---------------------------------------------------------------------------------
    def _toward(self, hand: int, target: np.ndarray, speed: float) -> np.ndarray:
        """Action for one hand: straight toward target, no axis above `speed` (keeps the path straight)."""
        wanted = (target - self.commanded[hand]) / self.step_size_m
        largest = float(np.max(np.abs(wanted)))
        if largest > speed:
            wanted *= speed / largest
        return np.clip(wanted, -1.0, 1.0)

    def _integrate(self, action: np.ndarray, base: np.ndarray) -> None:
        """Our copy of what the env does with the action: add, then clamp to its workspace."""
        self.commanded = self._clamp(self.commanded + action.reshape(2, 3) * self.step_size_m, base)

    def _clamp(self, points: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Left and right points (2, 3, world) inside the workspace; waypoints too, so each is reachable."""
        if self.workspace_base is None:
            return points
        boxes = (self.workspace_base["left"], self.workspace_base["right"])
        return np.stack([np.clip(points[hand], base + low, base + high) for hand, (low, high) in enumerate(boxes)])


def controller_for(kuavo, action_noise: float = 0.0, seed: int | None = None) -> ScriptedBoxLift:
    """ScriptedBoxLift with the bridge's settings (env.kuavo): its step size, workspace clamp and the
    task geometry the reward describes (box size, grasp height, squeeze depth, pre-grasp clearance)."""
    from kuavo_rl.kuavo.task import Workspace
    workspace = Workspace(kuavo)  # the bridge's own clamp (base frame), the right hand's mirrored
    return ScriptedBoxLift(box_size=tuple(kuavo.box_size), squeeze_depth_m=kuavo.squeeze_m,
                           step_size_m=kuavo.ee_step_m, grasp_height_m=kuavo.grasp_height_m,
                           clearance_m=kuavo.pregrasp_clearance_m,
                           workspace_base={"left": workspace.left, "right": workspace.right},
                           action_noise=action_noise, seed=seed)
