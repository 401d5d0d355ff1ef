"""A real OpenXR runtime for tests: Monado's service, headless (null compositor on Mesa's software
Vulkan), with its `remote` driver, whose two Index controllers (seen by applications through the Oculus
Touch profile) the test drives over a local TCP socket: poses, grip, trigger, buttons, active flag.

`scripts/openxr_runtime.sh` builds the runtime once (cached by version outside the repository). Where it
cannot be built the tests skip with the reason, unless KUAVO_REQUIRE_OPENXR_RUNTIME=1 (CI), where they fail.
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "openxr_runtime.sh"
REMOTE_HEADER = int.from_bytes(b"mndrmt3\0", "little")


def build_runtime(variant: str = "headless") -> Path:
    """The build directory of Monado (`variant`: headless | no-headless), building it on first use."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT), variant], capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        reason = f"Monado could not be built ({BUILD_SCRIPT.name} {variant}): {result.stderr.strip()[-1500:]}"
        if os.environ.get("KUAVO_REQUIRE_OPENXR_RUNTIME") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return Path(result.stdout.strip().splitlines()[-1])


# -- the remote driver's wire format (Monado 25.0.0 src/xrt/drivers/remote/r_interface.h) ---------------
class _Quat(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("z", ctypes.c_float), ("w", ctypes.c_float)]


class _Vec3(ctypes.Structure):
    _fields_ = [("x", ctypes.c_float), ("y", ctypes.c_float), ("z", ctypes.c_float)]


class _Pose(ctypes.Structure):
    _fields_ = [("orientation", _Quat), ("position", _Vec3)]


class _Fov(ctypes.Structure):
    _fields_ = [(n, ctypes.c_float) for n in ("angle_left", "angle_right", "angle_up", "angle_down")]


class _View(ctypes.Structure):
    _fields_ = [("fov", _Fov), ("pose", _Pose), ("_pad", ctypes.c_uint32)]


class _Head(ctypes.Structure):
    _fields_ = [("views", _View * 2), ("center", _Pose), ("per_view_data_valid", ctypes.c_bool),
                ("_pad", ctypes.c_bool * 3)]


_CONTROLLER_BOOLS = ("hand_tracking_active", "active", "system_click", "system_touch", "a_click", "a_touch",
                     "b_click", "b_touch", "trigger_click", "trigger_touch", "thumbstick_click",
                     "thumbstick_touch", "trackpad_touch", "_pad0", "_pad1", "_pad2")


class _Controller(ctypes.Structure):
    _fields_ = [("pose", _Pose), ("linear_velocity", _Vec3), ("angular_velocity", _Vec3),
                ("hand_curl", ctypes.c_float * 5), ("trigger_value", ctypes.c_float),
                ("squeeze_value", ctypes.c_float), ("squeeze_force", ctypes.c_float),
                ("thumbstick", ctypes.c_float * 2), ("trackpad_force", ctypes.c_float),
                ("trackpad", ctypes.c_float * 2)] + [(n, ctypes.c_bool) for n in _CONTROLLER_BOOLS]


class _RemoteData(ctypes.Structure):
    _fields_ = [("header", ctypes.c_uint64), ("head", _Head), ("left", _Controller), ("right", _Controller)]


assert ctypes.sizeof(_RemoteData) == 376  # the C struct's size: a layout slip would shift every field


@dataclass
class Hand:
    """One controller as the test sets it. Index buttons: on the left hand a/b are what Touch calls X/Y."""

    position: tuple[float, float, float] = (0.2, 1.3, -0.5)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # x, y, z, w
    active: bool = True
    trigger: float = 0.0
    squeeze: float = 0.0
    a: bool = False
    b: bool = False
    thumbstick: tuple[float, float] = (0.0, 0.0)


@dataclass
class Controllers:
    left: Hand = field(default_factory=lambda: Hand(position=(-0.2, 1.3, -0.5)))
    right: Hand = field(default_factory=Hand)


class RemoteControllers:
    """Drives the remote driver's controllers: `send()` after changing `state`."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # The hub greets with its reset state and its latest state; start from the former.
        self._data = _RemoteData.from_buffer_copy(self._recv(ctypes.sizeof(_RemoteData)))
        self._recv(ctypes.sizeof(_RemoteData))
        self.state = Controllers()

    def _recv(self, size: int) -> bytes:
        buf = b""
        while len(buf) < size:
            chunk = self._sock.recv(size - len(buf))
            if not chunk:
                raise ConnectionError("Monado's remote driver closed the connection")
            buf += chunk
        return buf

    def send(self) -> None:
        data = self._data
        data.header = REMOTE_HEADER
        for side in ("left", "right"):
            hand: Hand = getattr(self.state, side)
            c: _Controller = getattr(data, side)
            c.pose.position.x, c.pose.position.y, c.pose.position.z = hand.position
            q = c.pose.orientation
            q.x, q.y, q.z, q.w = hand.orientation
            c.active = hand.active
            c.trigger_value = hand.trigger
            c.trigger_click = hand.trigger > 0.9
            c.squeeze_value = hand.squeeze
            c.a_click, c.b_click = hand.a, hand.b
            c.thumbstick[0], c.thumbstick[1] = hand.thumbstick
        self._sock.sendall(bytes(data))

    def close(self) -> None:
        self._sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MonadoRuntime:
    """monado-service in a private runtime directory. `client_env` is what an application needs to find it."""

    def __init__(self, workdir: Path, variant: str = "headless", driver: str = "remote") -> None:
        """driver: remote (two controllers driven by the test, Touch profile) | simulated (static controllers
        that only offer the Khronos simple controller profile)."""
        self.service_build = build_runtime("headless")  # the service is the same for both variants
        self.client_build = self.service_build if variant == "headless" else build_runtime(variant)
        self.variant = variant
        self.driver = driver
        self.workdir = workdir
        self.runtime_dir = workdir / "xdg_runtime"
        self.config_dir = workdir / "xdg_config"
        self.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.config_dir / "monado").mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        config = {"active": "remote" if driver == "remote" else "none",
                  "remote": {"version": 0, "port": self.port, "view_count": 1}}
        (self.config_dir / "monado" / "config_v0.json").write_text(json.dumps(config))
        self.log_path = workdir / "monado.log"
        self.proc: subprocess.Popen | None = None
        self.controllers: RemoteControllers | None = None
        self.starts = 0

    @property
    def manifest(self) -> Path:
        return self.client_build / "openxr_monado-dev.json"

    @property
    def client_env(self) -> dict[str, str]:
        return {"XR_RUNTIME_JSON": str(self.manifest), "XDG_RUNTIME_DIR": str(self.runtime_dir),
                "XDG_CONFIG_HOME": str(self.config_dir)}

    def start(self, timeout_s: float = 30.0) -> RemoteControllers | None:
        env = dict(os.environ, XRT_COMPOSITOR_NULL="1", XRT_NO_STDIN="1", **self.client_env)
        if self.driver == "simulated":
            env.update(SIMULATED_ENABLE="1", SIMULATED_LEFT="simple", SIMULATED_RIGHT="simple")
        service = self.service_build / "src" / "xrt" / "targets" / "service" / "monado-service"
        socket_path = self.runtime_dir / "monado_comp_ipc"
        socket_path.unlink(missing_ok=True)
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"--- start {self.starts} ---\n")
        log.flush()
        self.proc = subprocess.Popen([str(service)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while not socket_path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"monado-service did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        if self.driver == "remote":
            self.controllers = RemoteControllers(self.port, timeout_s=max(1.0, deadline - time.monotonic()))
            self.controllers.send()
        return self.controllers

    def kill(self) -> None:
        """The runtime dies (SIGKILL): what a crash or a pulled streaming server looks like to a client."""
        self.stop(graceful=False)

    def stop(self, graceful: bool = True) -> None:
        if self.controllers is not None:
            self.controllers.close()
            self.controllers = None
        if self.proc is not None and self.proc.poll() is None:
            if graceful:
                self.proc.terminate()
            else:
                self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def main() -> None:
    """Start the test runtime by hand: prints what a node's shell must export, runs until Ctrl-C."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("headless", "no-headless"), default="headless")
    parser.add_argument("--driver", choices=("remote", "simulated"), default="remote")
    args = parser.parse_args()
    runtime = MonadoRuntime(Path(tempfile.mkdtemp(prefix="kuavo_openxr_")), args.variant, args.driver)
    runtime.start()
    print("# Monado is running; in the node's shell:")
    for key, value in runtime.client_env.items():
        print(f"export {key}={value}")
    if args.driver == "remote":
        print(f"# remote driver (controllers, see RemoteControllers) on 127.0.0.1:{runtime.port}")
    print(f"# runtime log: {runtime.log_path}; Ctrl-C stops it", flush=True)
    try:
        runtime.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
