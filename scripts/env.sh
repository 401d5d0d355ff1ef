# Source me (after ./kuavo setup): venv + ROS 2 (full install or PyPI wheels) + this workspace.
_kuavo_root="${KUAVO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export KUAVO_ROOT="$_kuavo_root"
export KUAVO_ROS_MODE="$(cat "$_kuavo_root/.venv/kuavo_ros_mode" 2>/dev/null || echo wheels)"
if [ "$KUAVO_ROS_MODE" != wheels ]; then
  # Full ROS 2 install: its setup first, then the venv on top (created with --system-site-packages).
  set +u; source "$KUAVO_ROS_MODE/setup.bash"; set -u 2>/dev/null || true
fi
set +u
source "$_kuavo_root/.venv/bin/activate"
if [ "$KUAVO_ROS_MODE" = wheels ]; then
  # The wheels make the venv itself a ROS prefix.
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
source "$_kuavo_root/install/local_setup.bash"
# Node executables and the kuavo-rl CLI (ament_python installs them under lib/<package>).
export PATH="$_kuavo_root/install/kuavo_rl/lib/kuavo_rl:$_kuavo_root/install/kuavo_vr_teleop/lib/kuavo_vr_teleop:$PATH"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Reliable writers repair lost samples within 0.1 s instead of Fast DDS's 3 s (config/dds/*.xml);
# a profile file of your own is kept. Fast DDS 2 (Humble, Jazzy) reads the other variable and tag names.
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_kuavo_root/config/dds/fastdds.xml}"
case "${ROS_DISTRO:-}" in
  humble|jazzy) export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_kuavo_root/config/dds/fastrtps.xml}" ;;
esac
unset _kuavo_root
