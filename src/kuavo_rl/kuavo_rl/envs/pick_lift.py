"""Grasp-and-lift in simulation: gym-hil's MuJoCo Panda pick-cube, state only, flat spaces.

A stand-in for the Kuavo box carry: the same kind of task (reach, grasp, lift) with an
end-effector-delta action that the VR teleop's EndEffectorDeltaMapping produces directly.

- observation: float32 [agent_pos (18: 7 joint q, 7 joint qd, gripper command 0..255, TCP xyz),
  environment_state (3: block xyz)] = 21 values.
- action: float32 [-1, 1]^4 = [dx, dy, dz, gripper]; dx..dz times 0.025 m is the end-effector
  target step (as gym-hil's EE wrapper); gripper is a per-step change of the closure command
  (+1 close fully, -1 open fully, 0 keep), so 0 means "hold still" for the whole action.
- reward: gym-hil's own (sparse 1.0 once the block is 0.1 m up, or its dense mix).
- info["reward_terms"]: float32 [distance (m, TCP to block), grasp (0/1), lift_height (m above
  the start), success (0/1)] from every reset() and step(), for reward shaping elsewhere.

gym-hil's base env builds an OpenGL renderer in its constructor even for state-only use; on a
headless machine without EGL/OSMesa that fails, so construction swaps in a no-op renderer
(this env never renders).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import gymnasium as gym
import numpy as np
from gymnasium import spaces

EE_STEP_M = 0.025  # gym-hil's DEFAULT_EE_STEP_SIZE
# Block start positions (x, y) when randomised: gym-hil's own sampling bounds.
BLOCK_XY_LOW = np.array([0.3, -0.15])
BLOCK_XY_HIGH = np.array([0.5, 0.15])
GRASP_DISTANCE_M = 0.03  # TCP this close to the block centre, gripper closed -> "grasp"
GRASP_CLOSURE = 0.5  # fraction of the gripper's full command


class _NoRenderer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def render(self) -> None:
        return None

    def update_scene(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def _without_renderer() -> Iterator[None]:
    import gym_hil.mujoco_gym_env as base

    original = base.mujoco.Renderer
    base.mujoco.Renderer = _NoRenderer  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        base.mujoco.Renderer = original  # type: ignore[misc]


class PickLiftEnv(gym.Env):
    reward_term_names: tuple[str, ...] = ("distance", "grasp", "lift_height", "success")
    OBSERVATION_DIM = 21  # agent_pos (18) + block xyz (3); checked against the sim when it is built
    ACTION_DIM = 4
    metadata = {"render_modes": []}

    def __init__(
        self,
        seed: int | None = None,
        max_episode_steps: int = 100,
        reward_type: str = "sparse",
        random_block_position: bool = True,
    ) -> None:
        from gym_hil.envs import PandaPickCubeGymEnv

        with _without_renderer():
            self._sim = PandaPickCubeGymEnv(seed=seed or 0, reward_type=reward_type, image_obs=False)
        self.max_episode_steps = int(max_episode_steps)
        self.random_block_position = random_block_position
        self.reward_term_names = PickLiftEnv.reward_term_names
        agent_dim = int(self._sim.observation_space["agent_pos"].shape[0])
        if agent_dim + 3 != self.OBSERVATION_DIM:
            raise RuntimeError(f"gym-hil's agent_pos has {agent_dim} values; PickLiftEnv.OBSERVATION_DIM assumes "
                               f"{self.OBSERVATION_DIM - 3} (a gym-hil version change?)")
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.OBSERVATION_DIM,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (self.ACTION_DIM,), dtype=np.float32)
        self._steps = 0
        self._seed = seed

    # -- gym API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None  # constructor seed applies to the first reset
        super().reset(seed=seed)
        obs, _ = self._sim.reset(seed=seed)
        if self.random_block_position:
            # Our own seeded RNG: gym-hil draws from numpy's global RNG, which a seed does not fix.
            import mujoco

            xy = self.np_random.uniform(BLOCK_XY_LOW, BLOCK_XY_HIGH)
            data = self._sim.data
            data.jnt("block").qpos[:3] = (*xy, self._sim._block_z)
            mujoco.mj_forward(self._sim.model, data)
            self._sim._z_init = float(data.sensor("block_pos").data[2])
            self._sim._z_success = self._sim._z_init + 0.1
            obs = self._sim._compute_observation()
        self._steps = 0
        return self._flat(obs), {"reward_terms": self._reward_terms()}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.clip(np.nan_to_num(np.asarray(action, dtype=np.float64), nan=0.0), -1.0, 1.0)
        if a.shape != (4,):
            raise ValueError(f"action must have shape (4,), got {a.shape}")
        full = np.concatenate([a[:3] * EE_STEP_M, np.zeros(3), a[3:]])
        obs, reward, terminated, _, sim_info = self._sim.step(full)
        self._steps += 1
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {"reward_terms": self._reward_terms(), "succeed": bool(sim_info.get("succeed", False))}
        return self._flat(obs), float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        self._sim.close()

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _flat(obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([obs["agent_pos"], obs["environment_state"]]).astype(np.float32)

    def tcp_position(self) -> np.ndarray:
        return np.array(self._sim.data.sensor("2f85/pinch_pos").data, dtype=np.float64)

    def block_position(self) -> np.ndarray:
        return np.array(self._sim.data.sensor("block_pos").data, dtype=np.float64)

    def _reward_terms(self) -> np.ndarray:
        from gym_hil.mujoco_gym_env import MAX_GRIPPER_COMMAND

        tcp, block = self.tcp_position(), self.block_position()
        distance = float(np.linalg.norm(block - tcp))
        closure = float(self._sim.get_gripper_pose()[0]) / MAX_GRIPPER_COMMAND
        grasp = float(closure > GRASP_CLOSURE and distance < GRASP_DISTANCE_M)
        lift = float(block[2] - self._sim._z_init)
        success = float(self._sim._is_success())
        return np.array([distance, grasp, lift, success], dtype=np.float32)
