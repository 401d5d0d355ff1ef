"""Meta Quest (or any OpenXR controller) input through pyopenxr, without rendering.

Kept apart from the rest of the package: it is the only module that touches a headset, and
it cannot be exercised without an OpenXR runtime (the integration tests use Monado, headless).
``import xr`` happens inside the constructor so that the package works where pyopenxr is absent.

Flow (after pyopenxr's public headless example): instance with ``XR_MND_headless`` (no graphics
binding) where the runtime offers it, else an offscreen Vulkan binding that never presents a
frame (``vulkan_binding``; SteamVR, for one, needs it); ``XR_KHR_convert_timespec_time`` turns
CLOCK_MONOTONIC into an XrTime for ``locate_space``. One action set bound to the Oculus Touch
profile with a ``khr/simple_controller`` fallback; the profile the runtime picks is reported
(``interaction_profile``); session state events drive begin/end.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any

from . import vulkan_binding
from .controller import ControllerFrame, HandState
from .profiles import SIMPLE_PROFILE, TOUCH_PROFILE

NO_RUNTIME_HELP = (
    "No OpenXR runtime was found, so VR teleoperation is unavailable. To use a Meta Quest, "
    "run an OpenXR runtime that streams it to this PC - WiVRn (Monado-based, with the WiVRn "
    "app on the Quest) or ALVR with SteamVR - or Monado for PC-tethered devices, and make it "
    "the active runtime: start it (it registers itself), or set XR_RUNTIME_JSON to the "
    "runtime's manifest, e.g. XR_RUNTIME_JSON=/usr/share/openxr/1/openxr_wivrn.json or "
    "~/.steam/steam/steamapps/common/SteamVR/steamxr_linux64.json. Without a headset, use "
    "source:=replay with replay_file:=<recording.jsonl>."
)

HANDS = ("left", "right")

# Binding suffixes per action (both hands unless noted) for the Oculus Touch profile.
_TOUCH_BINDINGS: dict[str, dict[str, str]] = {
    "grip_pose": {"left": "input/grip/pose", "right": "input/grip/pose"},
    "aim_pose": {"left": "input/aim/pose", "right": "input/aim/pose"},
    "trigger": {"left": "input/trigger/value", "right": "input/trigger/value"},
    "squeeze": {"left": "input/squeeze/value", "right": "input/squeeze/value"},
    "primary": {"left": "input/x/click", "right": "input/a/click"},
    "secondary": {"left": "input/y/click", "right": "input/b/click"},
    "thumbstick": {"left": "input/thumbstick", "right": "input/thumbstick"},
    "thumbstick_click": {"left": "input/thumbstick/click", "right": "input/thumbstick/click"},
    "menu": {"left": "input/menu/click"},  # the right Touch controller's system button is the runtime's
}
# The simple controller only has select (mapped to trigger), menu and the two poses.
_SIMPLE_BINDINGS: dict[str, dict[str, str]] = {
    "grip_pose": {"left": "input/grip/pose", "right": "input/grip/pose"},
    "aim_pose": {"left": "input/aim/pose", "right": "input/aim/pose"},
    "trigger": {"left": "input/select/click", "right": "input/select/click"},
    "menu": {"left": "input/menu/click", "right": "input/menu/click"},
}
PROFILES = {TOUCH_PROFILE: _TOUCH_BINDINGS, SIMPLE_PROFILE: _SIMPLE_BINDINGS}


class OpenXRUnavailable(RuntimeError):
    """No usable OpenXR runtime (or pyopenxr) - the message says how to provide one."""


def _ext_name(prop: Any) -> str:
    name = prop.extension_name
    return name.decode() if isinstance(name, bytes) else str(name)


class OpenXRSource:
    """Controller frames from an OpenXR runtime. ``alive`` turns False once the session is lost
    or the runtime exits; the owner then closes it and constructs a new one later."""

    name = "openxr"

    def __init__(
        self,
        app_name: str = "kuavo_vr_teleop",
        pose: str = "grip",
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda msg: None,
    ) -> None:
        if pose not in ("grip", "aim"):
            raise ValueError("pose must be 'grip' or 'aim'")
        try:
            import xr  # pyopenxr
        except ImportError as exc:  # pragma: no cover - pyopenxr is a declared dependency
            raise OpenXRUnavailable(f"pyopenxr is not installed ({exc}). " + NO_RUNTIME_HELP) from exc
        self._xr = xr
        self._pose = pose
        self._clock = clock
        self._log = log
        self._instance: Any = None
        self._session: Any = None
        self._action_set: Any = None
        self._graphics: Any = None  # the offscreen Vulkan binding, when the runtime is not headless
        self._frames: Any = None  # its frame loop while the session runs
        self._spaces: list[Any] = []
        self._running = False  # between begin_session and end_session
        self._state = xr.SessionState.UNKNOWN
        self.headless = False
        self.graphics = ""  # how the session was created, for the log: "headless" | "vulkan (offscreen)"
        self.interaction_profile = ""  # the profile the runtime bound to the controllers ("" = none yet)
        self.alive = True
        try:
            self._open(app_name)
        except OpenXRUnavailable:
            self.close()
            raise
        except xr.RuntimeUnavailableError as exc:
            self.close()
            raise OpenXRUnavailable(NO_RUNTIME_HELP) from exc
        except xr.XrException as exc:
            self.close()
            raise OpenXRUnavailable(
                f"The OpenXR runtime could not start a session ({type(exc).__name__}: {exc}). "
                "Is the headset connected and the runtime (WiVRn/ALVR/Monado) running?"
            ) from exc
        except Exception:
            self.close()
            raise

    # -- setup -------------------------------------------------------------------------------
    def _open(self, app_name: str) -> None:
        xr = self._xr
        available = {_ext_name(p) for p in xr.enumerate_instance_extension_properties()}
        if xr.KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME not in available:
            raise OpenXRUnavailable(
                "The OpenXR runtime lacks XR_KHR_convert_timespec_time, which this headless "
                "reader needs to sample controller poses. Use WiVRn, Monado or SteamVR (ALVR)."
            )
        extensions = [xr.KHR_CONVERT_TIMESPEC_TIME_EXTENSION_NAME]
        self.headless = xr.MND_HEADLESS_EXTENSION_NAME in available
        if self.headless:
            extensions.append(xr.MND_HEADLESS_EXTENSION_NAME)
        elif vulkan_binding.REQUIRED_EXTENSION in available:
            extensions.append(vulkan_binding.REQUIRED_EXTENSION)
        else:
            raise OpenXRUnavailable(
                "The OpenXR runtime offers neither XR_MND_headless nor XR_KHR_vulkan_enable2, so this node "
                f"cannot open a session without rendering (it offers: {', '.join(sorted(available))})."
            )
        self._instance = xr.create_instance(
            xr.InstanceCreateInfo(
                application_info=xr.ApplicationInfo(application_name=app_name),
                enabled_extension_names=extensions,
            )
        )
        system = xr.get_system(self._instance, xr.SystemGetInfo(form_factor=xr.FormFactor.HEAD_MOUNTED_DISPLAY))
        binding = None
        if not self.headless:
            try:
                self._graphics = vulkan_binding.VulkanBinding(xr, self._instance, system)
            except vulkan_binding.VulkanUnavailable as exc:
                raise OpenXRUnavailable(
                    "The OpenXR runtime has no headless mode (XR_MND_headless), so a session needs a graphics "
                    f"binding, and the offscreen Vulkan one failed: {exc}"
                ) from exc
            binding = self._graphics.binding
        self.graphics = "headless" if self.headless else "vulkan (offscreen, presents nothing)"
        self._session = xr.create_session(self._instance, xr.SessionCreateInfo(system_id=system, next=binding))
        self._hand_paths = [xr.string_to_path(self._instance, f"/user/hand/{h}") for h in HANDS]
        self._create_actions()
        self._suggest_bindings()
        xr.attach_session_action_sets(self._session, xr.SessionActionSetsAttachInfo(action_sets=[self._action_set]))
        pose_action = self._actions[f"{self._pose}_pose"]
        self._hand_spaces = [
            xr.create_action_space(
                self._session, xr.ActionSpaceCreateInfo(action=pose_action, subaction_path=path)
            )
            for path in self._hand_paths
        ]
        self._spaces.extend(self._hand_spaces)
        self._base_space = self._reference_space()
        self._spaces.append(self._base_space)
        self._log(f"OpenXR session created (graphics: {self.graphics})")

    def _create_actions(self) -> None:
        xr = self._xr
        self._action_set = xr.create_action_set(
            self._instance,
            xr.ActionSetCreateInfo(
                action_set_name="kuavo_teleop", localized_action_set_name="Kuavo teleop", priority=0
            ),
        )
        types = {
            "grip_pose": xr.ActionType.POSE_INPUT,
            "aim_pose": xr.ActionType.POSE_INPUT,
            "trigger": xr.ActionType.FLOAT_INPUT,
            "squeeze": xr.ActionType.FLOAT_INPUT,
            "primary": xr.ActionType.BOOLEAN_INPUT,
            "secondary": xr.ActionType.BOOLEAN_INPUT,
            "thumbstick": xr.ActionType.VECTOR2F_INPUT,
            "thumbstick_click": xr.ActionType.BOOLEAN_INPUT,
            "menu": xr.ActionType.BOOLEAN_INPUT,
        }
        subpaths = (xr.Path * 2)(*self._hand_paths)
        self._actions = {
            name: xr.create_action(
                self._action_set,
                xr.ActionCreateInfo(
                    action_type=kind,
                    action_name=name,
                    localized_action_name=name.replace("_", " "),
                    count_subaction_paths=2,
                    subaction_paths=subpaths,
                ),
            )
            for name, kind in types.items()
        }

    def _suggest_bindings(self) -> None:
        xr = self._xr
        accepted = 0
        for profile, table in PROFILES.items():
            bindings = [
                xr.ActionSuggestedBinding(
                    action=self._actions[action],
                    binding=xr.string_to_path(self._instance, f"/user/hand/{hand}/{suffix}"),
                )
                for action, per_hand in table.items()
                for hand, suffix in per_hand.items()
            ]
            try:
                xr.suggest_interaction_profile_bindings(
                    self._instance,
                    xr.InteractionProfileSuggestedBinding(
                        interaction_profile=xr.string_to_path(self._instance, profile),
                        suggested_bindings=(xr.ActionSuggestedBinding * len(bindings))(*bindings),
                    ),
                )
                accepted += 1
            except xr.XrException as exc:  # a runtime may not know a profile: use the others
                self._log(f"OpenXR runtime rejected bindings for {profile}: {exc}")
        if accepted == 0:
            raise OpenXRUnavailable("The OpenXR runtime accepted no controller bindings (Touch or simple).")

    def _reference_space(self) -> Any:
        xr = self._xr
        for kind in (xr.ReferenceSpaceType.STAGE, xr.ReferenceSpaceType.LOCAL):
            try:
                return xr.create_reference_space(
                    self._session, xr.ReferenceSpaceCreateInfo(reference_space_type=kind)
                )
            except xr.XrException as exc:
                self._log(f"OpenXR reference space {kind} unavailable: {exc}")
        raise OpenXRUnavailable("The OpenXR runtime offers neither a STAGE nor a LOCAL reference space.")

    # -- runtime loop ------------------------------------------------------------------------
    def _pump_events(self) -> None:
        xr = self._xr
        while self._instance is not None:
            try:
                event = xr.poll_event(self._instance)
            except xr.EventUnavailable:
                return
            kind = xr.StructureType(event.type)
            if kind == xr.StructureType.EVENT_DATA_SESSION_STATE_CHANGED:
                changed = ctypes.cast(ctypes.byref(event), ctypes.POINTER(xr.EventDataSessionStateChanged)).contents
                self._on_state(xr.SessionState(changed.state))
            elif kind == xr.StructureType.EVENT_DATA_INTERACTION_PROFILE_CHANGED:
                self._read_interaction_profile()
            elif kind == xr.StructureType.EVENT_DATA_INSTANCE_LOSS_PENDING:
                self._log("OpenXR instance loss pending (runtime shutting down)")
                self.alive = False

    def _on_state(self, state: Any) -> None:
        xr = self._xr
        self._state = state
        self._log(f"OpenXR session state {state.name}")
        if state == xr.SessionState.READY and self.alive:
            # A headless session has no views; with graphics, the runtime's own first choice (a Quest: stereo).
            view = self._graphics.view_configuration if self._graphics else xr.ViewConfigurationType.PRIMARY_MONO
            xr.begin_session(self._session, xr.SessionBeginInfo(primary_view_configuration_type=view))
            self._running = True
            if self._graphics is not None:  # a session with graphics only becomes visible with frames
                self._frames = vulkan_binding.FrameLoop(xr, self._session, log=self._log)
                self._frames.start()
        elif state == xr.SessionState.STOPPING:
            self._end_session()
        elif state in (xr.SessionState.LOSS_PENDING, xr.SessionState.EXITING):
            self.alive = False

    def _stop_frame_loop(self) -> None:
        if self._frames is not None:
            self._frames.stop()
            self._frames = None

    def _end_session(self) -> None:
        self._stop_frame_loop()
        if self._running:
            self._running = False
            self._xr.end_session(self._session)

    def _read_interaction_profile(self) -> None:
        """The profile bound to the controllers (the right hand's, else the left's)."""
        xr = self._xr
        profiles = []
        for path in reversed(self._hand_paths):
            state = xr.get_current_interaction_profile(self._session, path)
            if state.interaction_profile != xr.NULL_PATH:
                profiles.append(xr.path_to_string(self._instance, state.interaction_profile))
        self.interaction_profile = profiles[0] if profiles else ""
        self._log(f"OpenXR interaction profile: {self.interaction_profile or 'none (no controller bound)'}")

    def _now_xr_time(self) -> Any:
        xr = self._xr
        t = time.clock_gettime(time.CLOCK_MONOTONIC)
        spec = xr.timespec()
        spec.tv_sec = int(t)
        spec.tv_nsec = int((t % 1.0) * 1e9)
        return xr.convert_timespec_time_to_time_khr(self._instance, spec)

    def poll(self) -> ControllerFrame | None:
        """Newest controller frame, or None while the session is not running."""
        if not self.alive:
            return None
        xr = self._xr
        try:
            self._pump_events()
            if not self.alive or not self._running:
                return None
            stamp = self._clock()
            if self._state != xr.SessionState.FOCUSED:
                # Input is only delivered while focused (e.g. not while the Quest menu is up):
                # report both hands inactive so that any takeover is released.
                return ControllerFrame(stamp, HandState(active=False), HandState(active=False))
            xr.sync_actions(
                self._session,
                xr.ActionsSyncInfo(active_action_sets=[xr.ActiveActionSet(action_set=self._action_set, subaction_path=xr.NULL_PATH)]),
            )
            now = self._now_xr_time()
            left, right = (self._read_hand(i, now) for i in range(2))
            return ControllerFrame(stamp, left, right)
        except xr.XrException as exc:
            # The runtime is gone or broke the session: say so now, so that a takeover ends at once.
            self._log(f"OpenXR error, the session is lost: {type(exc).__name__}: {exc}")
            self.alive = False
            return None

    def _read_hand(self, index: int, now: Any) -> HandState:
        xr = self._xr
        path = self._hand_paths[index]

        def info(name: str) -> Any:
            return xr.ActionStateGetInfo(action=self._actions[name], subaction_path=path)

        pose_state = xr.get_action_state_pose(self._session, info(f"{self._pose}_pose"))
        location = xr.locate_space(self._hand_spaces[index], self._base_space, now)
        flags = int(location.location_flags)
        needed = xr.SPACE_LOCATION_POSITION_VALID_BIT | xr.SPACE_LOCATION_ORIENTATION_VALID_BIT
        p, q = location.pose.position, location.pose.orientation
        trigger = xr.get_action_state_float(self._session, info("trigger"))
        squeeze = xr.get_action_state_float(self._session, info("squeeze"))
        stick = xr.get_action_state_vector2f(self._session, info("thumbstick"))

        def pressed(name: str) -> bool:
            state = xr.get_action_state_boolean(self._session, info(name))
            return bool(state.is_active and state.current_state)

        return HandState(
            position=(float(p.x), float(p.y), float(p.z)),
            orientation=(float(q.x), float(q.y), float(q.z), float(q.w)),
            pose_valid=bool(pose_state.is_active) and (flags & needed) == needed,
            trigger=float(trigger.current_state) if trigger.is_active else 0.0,
            squeeze=float(squeeze.current_state) if squeeze.is_active else 0.0,
            thumbstick=(float(stick.current_state.x), float(stick.current_state.y)) if stick.is_active else (0.0, 0.0),
            primary=pressed("primary"),
            secondary=pressed("secondary"),
            thumbstick_click=pressed("thumbstick_click"),
            menu=pressed("menu"),
            active=bool(pose_state.is_active),
        )

    def close(self, exit_timeout_s: float = 1.0) -> None:
        """Release everything; safe to call repeatedly, on a half-built source and after the runtime died.

        A running session is ended the way the spec allows, which is only from STOPPING: request the
        exit, wait (at most ``exit_timeout_s``) for the runtime to move the session to STOPPING, end it."""
        xr = self._xr
        lost = not self.alive
        self.alive = False

        def quietly(fn: Callable[..., Any], *args: Any) -> None:
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - teardown of a possibly-dead runtime
                pass

        if self._running and not lost:
            quietly(self._request_exit, exit_timeout_s)
        self._stop_frame_loop()
        self._running = False  # still running here: the runtime is gone; destroying the session is all that is left
        for space in self._spaces:
            quietly(xr.destroy_space, space)
        self._spaces = []
        if self._session is not None:
            quietly(xr.destroy_session, self._session)
            self._session = None
        if self._action_set is not None:
            quietly(xr.destroy_action_set, self._action_set)
            self._action_set = None
        if self._graphics is not None:
            self._graphics.close()
            self._graphics = None
        if self._instance is not None:
            quietly(xr.destroy_instance, self._instance)
            self._instance = None

    def _request_exit(self, timeout_s: float) -> None:
        xr = self._xr
        if self._state != xr.SessionState.STOPPING:
            xr.request_exit_session(self._session)
        deadline = time.monotonic() + timeout_s
        while self._running and time.monotonic() < deadline:
            self._pump_events()  # STOPPING ends the session (_on_state)
            time.sleep(0.005)
