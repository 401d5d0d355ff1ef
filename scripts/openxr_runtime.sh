#!/usr/bin/env bash
# Builds Monado's OpenXR service (no headset, no GPU needed) for the VR node's integration tests, from
# Debian's source package, and prints the directory holding its runtime manifest.
#   scripts/openxr_runtime.sh [headless|no-headless]
# headless (default): XR_MND_headless on, as WiVRn/Monado offer it; no-headless: without it, as on
# runtimes that need a graphics binding (SteamVR). Both: null compositor, drivers simulated, remote
# (controllers over TCP 4242) and qwerty only. Cached by version and build settings under
# ${XDG_CACHE_HOME:-~/.cache}/kuavo_rl/openxr-runtime; a second call only checks the stamp.
# Build dependencies come from the machine's own Debian sources (apt-get, as root); the source
# tarball is Debian trixie's, pinned by SHA-256 (the machine's apt sources are never changed).
set -euo pipefail
VARIANT="${1:-headless}"
case "$VARIANT" in headless) HEADLESS=ON;; no-headless) HEADLESS=OFF;; *)
  echo "openxr_runtime: unknown variant '$VARIANT' (headless | no-headless)" >&2; exit 2;; esac

MONADO_VERSION=25.0.0
TARBALL="monado_${MONADO_VERSION}+dfsg.orig.tar.xz"
TARBALL_SHA256=ddfa1899078173bea3db98034dc8b990df727a169f490896570ff6e3bda72113
TARBALL_URL="${KUAVO_MONADO_MIRROR:-http://deb.debian.org/debian}/pool/main/m/monado/$TARBALL"
BUILD_DEPS=(cmake ninja-build pkg-config glslang-tools libeigen3-dev libvulkan-dev libvulkan1
  mesa-vulkan-drivers libx11-dev libx11-xcb-dev libxcb-randr0-dev libxxf86vm-dev libxrandr-dev
  libusb-1.0-0-dev libhidapi-dev libcjson-dev libudev-dev libwayland-dev wayland-protocols libgl-dev
  libsdl2-dev libbsd-dev zlib1g-dev libdrm-dev xz-utils curl)
KEEP_DRIVERS=(SIMULATED REMOTE QWERTY)
OTHER_DRIVERS=(ANDROID ARDUINO DAYDREAM DEPTHAI EUROC HANDTRACKING HDK HYDRA ILLIXR NS OHMD OPENGLOVES PSMV
  PSSENSE PSVR REALSENSE RIFT_S ROKID SIMULAVR STEAMVR_LIGHTHOUSE SURVIVE TWRAP ULV2 ULV5 VF VIVE WMR XREAL_AIR)

CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DXRT_BUILD_SAMPLES=OFF
  -DXRT_FEATURE_OPENXR_HEADLESS="$HEADLESS" -DXRT_MODULE_COMPOSITOR_NULL=ON -DXRT_MODULE_COMPOSITOR_MAIN=OFF
  -DXRT_MODULE_MONADO_GUI=OFF -DXRT_MODULE_MONADO_CLI=OFF -DXRT_FEATURE_STEAMVR_PLUGIN=OFF
  -DXRT_FEATURE_SERVICE_SYSTEMD=OFF -DXRT_HAVE_SYSTEMD=OFF -DXRT_FEATURE_WINDOW_PEEK=OFF
  -DXRT_FEATURE_DEBUG_GUI=OFF -DXRT_HAVE_OPENCV=OFF -DXRT_HAVE_GST=OFF)
for d in "${KEEP_DRIVERS[@]}"; do CMAKE_ARGS+=("-DXRT_BUILD_DRIVER_$d=ON"); done
for d in "${OTHER_DRIVERS[@]}"; do CMAKE_ARGS+=("-DXRT_BUILD_DRIVER_$d=OFF"); done

log() { echo "[openxr runtime] $*" >&2; }
settings_hash="$(printf '%s\n' "$TARBALL_SHA256" "${CMAKE_ARGS[@]}" | sha256sum | cut -c1-12)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kuavo_rl/openxr-runtime"
DEST="$CACHE/monado-$MONADO_VERSION-$VARIANT-$settings_hash"
MANIFEST="$DEST/build/openxr_monado-dev.json"
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9  # one build at a time; a second caller waits, then finds it done
if [ -f "$DEST/done" ] && [ -f "$MANIFEST" ]; then echo "$DEST/build"; exit 0; fi
t0=$SECONDS

missing=()
for p in "${BUILD_DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "build dependencies missing: ${missing[*]}"
    log "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    exit 3
  fi
  log "installing ${#missing[@]} build dependencies with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" > "$CACHE/apt.log" 2>&1 || {
    apt-get update > "$CACHE/apt.log" 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >> "$CACHE/apt.log" 2>&1
  } || { tail -n 20 "$CACHE/apt.log" >&2; log "apt-get install failed (log: $CACHE/apt.log)"; exit 3; }
fi

if ! echo "$TARBALL_SHA256  $CACHE/$TARBALL" | sha256sum -c --quiet 2>/dev/null; then
  log "downloading Monado $MONADO_VERSION source ($TARBALL_URL)"
  curl -fsSL --retry 3 -o "$CACHE/$TARBALL.part" "$TARBALL_URL" || { log "download failed: $TARBALL_URL"; exit 3; }
  echo "$TARBALL_SHA256  $CACHE/$TARBALL.part" | sha256sum -c --quiet || { log "checksum mismatch for $TARBALL"; exit 3; }
  mv "$CACHE/$TARBALL.part" "$CACHE/$TARBALL"
fi

rm -rf "$DEST"
mkdir -p "$DEST"
tar -xf "$CACHE/$TARBALL" -C "$DEST" --strip-components=1
log "building monado-service ($VARIANT) in $DEST"
(
  cd "$DEST"
  cmake -S . -B build "${CMAKE_ARGS[@]}" > build.log 2>&1
  # The service (same for both variants: XR_MND_headless lives in the client library) comes from the
  # headless build; the no-headless variant is only the runtime library the application loads.
  targets=(openxr_monado)
  [ "$VARIANT" = headless ] && targets+=(monado-service)
  ninja -C build "${targets[@]}" >> build.log 2>&1
) || { tail -n 30 "$DEST/build.log" >&2; log "build failed (log: $DEST/build.log)"; exit 3; }
[ -f "$MANIFEST" ] || { log "build finished without $MANIFEST"; exit 3; }
touch "$DEST/done"
log "built in $((SECONDS - t0)) s"
echo "$DEST/build"
