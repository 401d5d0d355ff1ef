"""Offscreen Vulkan graphics binding for OpenXR runtimes without ``XR_MND_headless`` (SteamVR, for one).

Such runtimes refuse ``xrCreateSession`` without a graphics binding (XR_ERROR_GRAPHICS_DEVICE_INVALID).
This node never renders: it only needs a session that reaches FOCUSED to read controller input. So:

* ``VulkanBinding(xr, instance, system_id)`` creates a VkInstance and a VkDevice (one graphics queue)
  *through the runtime* (``XR_KHR_vulkan_enable2``, which the instance must enable: ``REQUIRED_EXTENSION``),
  so the runtime adds the Vulkan extensions it needs. Pass ``.binding`` as ``SessionCreateInfo(next=...)``;
  ``close()`` after ``xrDestroySession``. ``view_configuration`` is the runtime's preferred view
  configuration, for xrBeginSession (a runtime may lack PRIMARY_STEREO). Raises ``VulkanUnavailable``
  when Vulkan itself is missing.
* ``FrameLoop(xr, session, log)`` runs xrWaitFrame/xrBeginFrame/xrEndFrame with zero layers (no swapchain)
  on a daemon thread: without frames a session with graphics never gets past READY/SYNCHRONIZED (Monado:
  READY), so never FOCUSED; with zero-layer frames Monado goes READY -> FOCUSED within ~20-40 ms.
  ``start()`` after xrBeginSession, ``stop()`` before xrEndSession. The thread never raises: on an
  error (session or instance lost) it logs it and stops.

Only ctypes and ``libvulkan.so.1`` (Debian: libvulkan1 plus a driver, e.g. mesa-vulkan-drivers).
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable

REQUIRED_EXTENSION = "XR_KHR_vulkan_enable2"
INSTALL_HELP = "install libvulkan1 and a Vulkan driver (e.g. mesa-vulkan-drivers, which has a CPU one)"

_VK_QUEUE_GRAPHICS_BIT = 0x1
_VK_ERROR_INCOMPATIBLE_DRIVER = -9  # the loader found no driver (ICD)


class VulkanUnavailable(RuntimeError):
    """Vulkan (loader, driver or a graphics queue) is missing, so no offscreen binding can be made."""


class _AppInfo(ctypes.Structure):  # VkApplicationInfo
    _fields_ = [("sType", ctypes.c_int32), ("pNext", ctypes.c_void_p), ("pApplicationName", ctypes.c_char_p),
                ("applicationVersion", ctypes.c_uint32), ("pEngineName", ctypes.c_char_p),
                ("engineVersion", ctypes.c_uint32), ("apiVersion", ctypes.c_uint32)]


class _InstanceInfo(ctypes.Structure):  # VkInstanceCreateInfo
    _fields_ = [("sType", ctypes.c_int32), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                ("pApplicationInfo", ctypes.POINTER(_AppInfo)), ("enabledLayerCount", ctypes.c_uint32),
                ("ppEnabledLayerNames", ctypes.c_void_p), ("enabledExtensionCount", ctypes.c_uint32),
                ("ppEnabledExtensionNames", ctypes.c_void_p)]


class _QueueInfo(ctypes.Structure):  # VkDeviceQueueCreateInfo
    _fields_ = [("sType", ctypes.c_int32), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                ("queueFamilyIndex", ctypes.c_uint32), ("queueCount", ctypes.c_uint32),
                ("pQueuePriorities", ctypes.POINTER(ctypes.c_float))]


class _DeviceInfo(ctypes.Structure):  # VkDeviceCreateInfo
    _fields_ = [("sType", ctypes.c_int32), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                ("queueCreateInfoCount", ctypes.c_uint32), ("pQueueCreateInfos", ctypes.POINTER(_QueueInfo)),
                ("enabledLayerCount", ctypes.c_uint32), ("ppEnabledLayerNames", ctypes.c_void_p),
                ("enabledExtensionCount", ctypes.c_uint32), ("ppEnabledExtensionNames", ctypes.c_void_p),
                ("pEnabledFeatures", ctypes.c_void_p)]


class _QueueFamily(ctypes.Structure):  # VkQueueFamilyProperties
    _fields_ = [("queueFlags", ctypes.c_uint32), ("queueCount", ctypes.c_uint32),
                ("timestampValidBits", ctypes.c_uint32), ("minImageTransferGranularity", ctypes.c_uint32 * 3)]


def _load_vulkan() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libvulkan.so.1")
    except OSError as exc:
        raise VulkanUnavailable(f"the Vulkan loader libvulkan.so.1 is missing ({exc}); "
                                f"{INSTALL_HELP}") from exc
    lib.vkGetPhysicalDeviceQueueFamilyProperties.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(_QueueFamily)]
    lib.vkGetPhysicalDeviceQueueFamilyProperties.restype = None
    for name in ("vkDestroyDevice", "vkDestroyInstance"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        getattr(lib, name).restype = None
    return lib


def _api_version(xr_min: Any, xr_max: Any) -> int:
    """Vulkan 1.1 (enough for the runtimes' external-memory needs) moved into the runtime's range."""
    def vk(v: Any) -> tuple[int, int]:  # a packed XrVersion (pyopenxr gives xr.Version, int() packs it)
        return (int(v) >> 48) & 0xFFFF, (int(v) >> 32) & 0xFFFF
    major, minor = min(max((1, 1), vk(xr_min)), vk(xr_max)) if int(xr_max) else max((1, 1), vk(xr_min))
    return (major << 22) | (minor << 12)


class VulkanBinding:
    """A VkInstance + VkDevice made by the runtime; ``binding`` goes into SessionCreateInfo.next."""

    def __init__(self, xr_module: Any, instance: Any, system_id: Any) -> None:
        self._xr = xr_module
        self._vk = _load_vulkan()
        self._vk_instance: Any = None
        self._vk_device: Any = None
        try:
            self.binding = self._create(instance, system_id)
        except BaseException:
            self.close()
            raise

    def _create(self, instance: Any, system_id: Any) -> Any:
        xr, vk = self._xr, self._vk
        # The spec requires this call before xrCreateSession; pyopenxr only wraps the v1 name.
        reqs = xr.GraphicsRequirementsVulkan2KHR()
        get_reqs = ctypes.cast(xr.get_instance_proc_addr(instance, "xrGetVulkanGraphicsRequirements2KHR"),
                               xr.PFN_xrGetVulkanGraphicsRequirements2KHR)
        result = xr.check_result(xr.Result(get_reqs(instance, system_id, ctypes.byref(reqs))))
        if result.is_exception():
            raise result
        # Kept on self: the runtime may call back through it for as long as the instance lives.
        self._gipa = ctypes.cast(vk.vkGetInstanceProcAddr, xr.platform.linux.PFN_vkGetInstanceProcAddr)
        api = _api_version(reqs.min_api_version_supported, reqs.max_api_version_supported)
        name = b"kuavo_vr_teleop"
        app = _AppInfo(sType=0, pApplicationName=name, pEngineName=name, apiVersion=api)
        inst_info = _InstanceInfo(sType=1, pApplicationInfo=ctypes.pointer(app))
        vk_instance, vk_result = xr.create_vulkan_instance_khr(instance, xr.VulkanInstanceCreateInfoKHR(
            system_id=system_id, pfn_get_instance_proc_addr=self._gipa,
            vulkan_create_info=ctypes.cast(ctypes.pointer(inst_info),
                                           ctypes.POINTER(xr.platform.linux.VkInstanceCreateInfo))))
        self._check(vk_result.value, "vkCreateInstance")
        self._vk_instance = vk_instance
        physical = xr.get_vulkan_graphics_device2_khr(
            instance, xr.VulkanGraphicsDeviceGetInfoKHR(system_id=system_id, vulkan_instance=vk_instance))
        family = self._graphics_family(physical)
        priority = ctypes.c_float(1.0)
        queue = _QueueInfo(sType=2, queueFamilyIndex=family, queueCount=1,
                           pQueuePriorities=ctypes.pointer(priority))
        dev_info = _DeviceInfo(sType=3, queueCreateInfoCount=1, pQueueCreateInfos=ctypes.pointer(queue))
        vk_device, vk_result = xr.create_vulkan_device_khr(instance, xr.VulkanDeviceCreateInfoKHR(
            system_id=system_id, pfn_get_instance_proc_addr=self._gipa, vulkan_physical_device=physical,
            vulkan_create_info=ctypes.cast(ctypes.pointer(dev_info),
                                           ctypes.POINTER(xr.platform.linux.VkDeviceCreateInfo))))
        self._check(vk_result.value, "vkCreateDevice")
        self._vk_device = vk_device
        # The runtime lists its preferred one first; STEREO is not a given (Monado's remote HMD: MONO).
        views = xr.enumerate_view_configurations(instance, system_id)
        self.view_configuration = xr.ViewConfigurationType(views[0])
        return xr.GraphicsBindingVulkanKHR(instance=vk_instance, physical_device=physical, device=vk_device,
                                           queue_family_index=family, queue_index=0)

    @staticmethod
    def _check(vk_result: int, call: str) -> None:
        if vk_result == _VK_ERROR_INCOMPATIBLE_DRIVER:
            raise VulkanUnavailable(f"{call}: no Vulkan driver (VK_ERROR_INCOMPATIBLE_DRIVER); " + INSTALL_HELP)
        if vk_result != 0:
            raise VulkanUnavailable(f"{call} (through the OpenXR runtime) failed with VkResult {vk_result}")

    def _graphics_family(self, physical: Any) -> int:
        dev = ctypes.cast(physical, ctypes.c_void_p)
        count = ctypes.c_uint32(0)
        self._vk.vkGetPhysicalDeviceQueueFamilyProperties(dev, ctypes.byref(count), None)
        families = (_QueueFamily * count.value)()
        self._vk.vkGetPhysicalDeviceQueueFamilyProperties(dev, ctypes.byref(count), families)
        for index, family in enumerate(families[: count.value]):
            if family.queueFlags & _VK_QUEUE_GRAPHICS_BIT and family.queueCount > 0:
                return index
        raise VulkanUnavailable("the runtime's Vulkan device has no graphics queue")

    def close(self) -> None:
        """Destroys the device, then the instance. Idempotent; call after xrDestroySession."""
        if self._vk_device:
            self._vk.vkDestroyDevice(ctypes.cast(self._vk_device, ctypes.c_void_p), None)
        self._vk_device = None
        if self._vk_instance:
            self._vk.vkDestroyInstance(ctypes.cast(self._vk_instance, ctypes.c_void_p), None)
        self._vk_instance = None


class FrameLoop:
    """Empty frames on a daemon thread, so that a session with graphics goes VISIBLE and FOCUSED."""

    def __init__(self, xr_module: Any, session: Any, log: Callable[[str], None] = lambda _msg: None) -> None:
        self._xr, self._session, self._log = xr_module, session, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openxr-frame-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 1.0) -> None:
        """Ends the loop (before xrEndSession); says so when the thread did not end within the timeout."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._log(f"OpenXR frame loop did not stop within {timeout_s} s (blocked in the runtime)")

    def _run(self) -> None:
        xr = self._xr
        try:
            while not self._stop.is_set():
                state = xr.wait_frame(self._session, xr.FrameWaitInfo())  # paced by the runtime
                xr.begin_frame(self._session, xr.FrameBeginInfo())
                # Zero layers: the compositor shows nothing of ours, yet the frame counts.
                xr.end_frame(self._session, xr.FrameEndInfo(
                    display_time=state.predicted_display_time,
                    environment_blend_mode=xr.EnvironmentBlendMode.OPAQUE, layers=[]))
        except Exception as exc:  # never out of the thread: the owner sees the loss through events
            self._log(f"OpenXR frame loop stopped: {type(exc).__name__}: {exc}")
