"""Forward and inverse kinematics of the two Kuavo arms on the MuJoCo model (no physics stepping).

IK is damped least squares per arm, iterated from a seed:
    dq = J+ W e  +  (I - J+ J) k (q_rest - q),      J+ = J^T (J J^T + lambda^2 I)^-1
- W weights position (1 per metre) above orientation (orientation_weight per radian): when both
  cannot be met, the hand point wins and the palm turns a little.
- The null-space term is a weak pull toward a bent-elbow rest pose. It matters most from a straight
  arm, where the elbow's 0 limit makes J singular and plain DLS would not bend the elbow.
- A joint at a limit whose step would push it further out is dropped from the solve (its column
  removed) and the step recomputed, so the other joints take up the motion instead of stalling.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from kuavo_rl.kuavo.model import ARM_JOINT_NAMES, HOME_ARM_Q, LEFT_EEF_SITE, RIGHT_EEF_SITE, load_model

ARMS = ("left", "right")
_ARM_SLICES = {"left": slice(0, 7), "right": slice(7, 14)}
_SITES = {"left": LEFT_EEF_SITE, "right": RIGHT_EEF_SITE}


@dataclass
class HandPoses:
    """Both hand points (sites left_eef / right_eef), world frame."""

    left_pos: np.ndarray  # (3,) m
    left_quat_xyzw: np.ndarray  # (4,)
    right_pos: np.ndarray
    right_quat_xyzw: np.ndarray


def quat_xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.array([q[3], q[0], q[1], q[2]], dtype=float)


def quat_wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.array([q[1], q[2], q[3], q[0]], dtype=float)


def site_quat_xyzw(data: mujoco.MjData, site_id: int) -> np.ndarray:
    quat_wxyz = np.empty(4)
    mujoco.mju_mat2Quat(quat_wxyz, data.site_xmat[site_id])
    return quat_wxyz_to_xyzw(quat_wxyz)


def read_hand_poses(data: mujoco.MjData, left_site: int, right_site: int) -> HandPoses:
    return HandPoses(data.site_xpos[left_site].copy(), site_quat_xyzw(data, left_site),
                     data.site_xpos[right_site].copy(), site_quat_xyzw(data, right_site))


def _unit_quat_wxyz(quat_xyzw, name: str) -> np.ndarray:
    q = np.asarray(quat_xyzw, dtype=float).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) < 1e-9:
        raise ValueError(f"{name} must be 4 finite values (x, y, z, w), not all zero")
    return quat_xyzw_to_wxyz(q / np.linalg.norm(q))


def _position(pos, name: str) -> np.ndarray:
    p = np.asarray(pos, dtype=float).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be 3 finite values (x, y, z), got {np.asarray(pos).shape}")
    return p


class ArmKinematics:
    def __init__(
        self,
        model: mujoco.MjModel | None = None,
        *,
        position_tolerance_m: float = 1e-3,
        orientation_tolerance_rad: float = 0.05,
        orientation_weight: float = 0.3,
        damping: float = 0.03,
        rest_bias_gain: float = 0.05,
        max_iterations: int = 100,
        max_step_rad: float = 0.3,
    ) -> None:
        self.model = model if model is not None else load_model()
        self.data = mujoco.MjData(self.model)  # our own: FK/IK never disturbs a simulation's state
        self.position_tolerance_m = position_tolerance_m
        self.orientation_tolerance_rad = orientation_tolerance_rad
        self.orientation_weight = orientation_weight
        self.damping = damping
        self.rest_bias_gain = rest_bias_gain
        self.max_iterations = max_iterations
        self.max_step_rad = max_step_rad
        self.rest_q14 = HOME_ARM_Q.copy()
        joint_ids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in ARM_JOINT_NAMES]
        self._joint_ids = np.array(joint_ids)
        # The model's own limits (a user MJCF may differ from ARM_JOINT_LOWER/UPPER; ours does not).
        limited = self.model.jnt_limited[self._joint_ids].astype(bool)
        self.lower = np.where(limited, self.model.jnt_range[self._joint_ids, 0], -np.inf)
        self.upper = np.where(limited, self.model.jnt_range[self._joint_ids, 1], np.inf)
        self._qpos_addr = self.model.jnt_qposadr[self._joint_ids]
        self._site_ids = {arm: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SITE, _SITES[arm]) for arm in ARMS}
        self.last_iterations = 0

    # -- forward kinematics ----------------------------------------------------------------------
    def _set_arm_q(self, q14: np.ndarray) -> None:
        self.data.qpos[self._qpos_addr] = q14
        mujoco.mj_kinematics(self.model, self.data)

    def fk(self, arm_q14) -> HandPoses:
        q = self._check_q14(arm_q14, "arm_q14")
        self._set_arm_q(q)
        return read_hand_poses(self.data, self._site_ids["left"], self._site_ids["right"])

    # -- inverse kinematics ----------------------------------------------------------------------
    def ik(self, left_pos, right_pos, left_quat_xyzw, right_quat_xyzw, seed_q14) -> tuple[np.ndarray, bool, float]:
        """Joint angles (14) putting the hand points at the targets (world frame).

        Returns (q14 within the joint limits, converged, position_error_m): converged means both
        hands within position_tolerance_m and orientation_tolerance_rad; position_error_m is the
        larger of the two hands' remaining distances (the best found, also when not converged).
        """
        target_pos = {"left": _position(left_pos, "left_pos"), "right": _position(right_pos, "right_pos")}
        target_quat = {"left": _unit_quat_wxyz(left_quat_xyzw, "left_quat_xyzw"),
                       "right": _unit_quat_wxyz(right_quat_xyzw, "right_quat_xyzw")}
        q = np.clip(self._check_q14(seed_q14, "seed_q14"), self.lower, self.upper)
        done = {arm: False for arm in ARMS}
        best_error = {arm: (np.inf, 0.0) for arm in ARMS}
        best_q = q.copy()
        for iteration in range(self.max_iterations + 1):
            self._set_arm_q(q)
            for arm in ARMS:
                if done[arm]:
                    continue
                pos_err, rot_err = self._pose_error(arm, target_pos[arm], target_quat[arm])
                error = (float(np.linalg.norm(pos_err)), float(np.linalg.norm(rot_err)))
                sl = _ARM_SLICES[arm]
                done[arm] = error[0] <= self.position_tolerance_m and error[1] <= self.orientation_tolerance_rad
                if done[arm] or self._weighted(error) < self._weighted(best_error[arm]):
                    best_error[arm] = error
                    best_q[sl] = q[sl]
                if not done[arm] and iteration < self.max_iterations:
                    q[sl] = self._step(arm, q[sl], pos_err, rot_err)
            if all(done.values()):
                break
        self.last_iterations = iteration  # for diagnostics
        converged = all(done.values())
        return best_q, converged, max(best_error[arm][0] for arm in ARMS)

    def _weighted(self, error: tuple[float, float]) -> float:
        return error[0] + self.orientation_weight * error[1]

    def _pose_error(self, arm: str, target_pos: np.ndarray, target_quat_wxyz: np.ndarray):
        site = self._site_ids[arm]
        pos_err = target_pos - self.data.site_xpos[site]
        current = np.empty(4)
        mujoco.mju_mat2Quat(current, self.data.site_xmat[site])
        local = np.empty(3)
        mujoco.mju_subQuat(local, target_quat_wxyz, current)  # rotation current -> target, hand frame
        rot_err = self.data.site_xmat[site].reshape(3, 3) @ local  # ... in the world frame
        return pos_err, rot_err

    def _jacobian(self, arm: str) -> np.ndarray:
        """(6, 7) world-frame Jacobian of the hand point; hinge columns from joint axes and anchors."""
        ids = self._joint_ids[_ARM_SLICES[arm]]
        axes = self.data.xaxis[ids]
        lever = self.data.site_xpos[self._site_ids[arm]] - self.data.xanchor[ids]
        return np.vstack([np.cross(axes, lever).T, self.orientation_weight * axes.T])

    def _step(self, arm: str, q7: np.ndarray, pos_err: np.ndarray, rot_err: np.ndarray) -> np.ndarray:
        sl = _ARM_SLICES[arm]
        lower, upper = self.lower[sl], self.upper[sl]
        jac = self._jacobian(arm)
        err = np.concatenate([pos_err, self.orientation_weight * rot_err])
        bias = self.rest_bias_gain * (self.rest_q14[sl] - q7)
        free = np.ones(7, dtype=bool)
        dq = np.zeros(7)
        for _ in range(7):
            dq[:] = 0.0
            dq[free] = self._dls(jac[:, free], err, bias[free])
            pushing_out = ((q7 <= lower + 1e-6) & (dq < 0)) | ((q7 >= upper - 1e-6) & (dq > 0))
            if not (pushing_out & free).any():
                break
            free &= ~pushing_out
        largest = np.max(np.abs(dq))
        if largest > self.max_step_rad:  # keep the linearisation honest far from the target
            dq *= self.max_step_rad / largest
        return np.clip(q7 + dq, lower, upper)

    def _dls(self, jac: np.ndarray, err: np.ndarray, bias: np.ndarray) -> np.ndarray:
        gram = jac @ jac.T + (self.damping ** 2) * np.eye(jac.shape[0])
        jac_pinv = jac.T @ np.linalg.inv(gram)
        return jac_pinv @ err + bias - jac_pinv @ (jac @ bias)

    @staticmethod
    def _check_q14(q, name: str) -> np.ndarray:
        arr = np.asarray(q, dtype=float).reshape(-1)
        if arr.shape != (14,):
            raise ValueError(f"{name} must have 14 values (left arm then right arm), got {arr.size}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
        return arr.copy()
