"""What every kuavo_rl node shares: the experiment configuration parameters and the spin loop."""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import traceback

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.signals import SignalHandlerOptions

from kuavo_rl.config import ConfigError, ExperimentConfig, load_config

# After the node is closed, the process still runs the atexit handlers (logging flush, temporary
# files, child processes) but gives them at most this long.
EXIT_HANDLERS_TIMEOUT_S = 2.0


def declare(node, name: str, default, description: str):
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


def on_new_subscriber(callback):
    """Publisher event callbacks calling `callback()` when a subscriber matches, for a publisher whose
    last message a late subscriber needs now (not at the next periodic resend); None on distributions
    without the matched event (Humble), where the periodic resend is what there is."""
    try:
        from rclpy.event_handler import PublisherEventCallbacks
        return PublisherEventCallbacks(matched=lambda info: callback() if info.current_count_change > 0 else None)
    except (ImportError, TypeError):
        return None


def load_node_config(node) -> ExperimentConfig:
    """Every node reads the same experiment YAML (config_file) plus `section.key=value` overrides."""
    path = declare(node, "config_file", "", "experiment YAML (config/*.yaml); empty = built-in defaults")
    overrides = declare(node, "overrides", [""], "section.key=value overrides applied after config_file")
    return load_config(path or None, [o for o in overrides if o], pipeline=True)


def run_node(make_node, args=None, *, exit_process: bool = True) -> int:
    """Spin until the node says it is done or the process gets SIGINT/SIGTERM; always close the node
    while the ROS context is still valid (so a learner can save and acknowledge its last checkpoint).

    Signals after the first one are ignored: they never cut the node's close() (the learner's last
    checkpoint) short. A signal while the node is still being built abandons the build (nothing to save).

    Then, with `exit_process` (what the node executables use), the process ends right here with the
    exit code (0; 2 for a configuration error; 1 for an exception) instead of returning: interpreter
    teardown of a process that imported torch, lerobot and the DDS stack (about 4000 modules and half a
    million objects to collect, then C++ static destructors) costs about 1.5 s of CPU, which a loaded
    machine stretches past launch's 5 s SIGINT->SIGTERM escalation; and a library's non-daemon thread
    would block it for good. Everything the nodes persist is closed by then; atexit handlers still run,
    within EXIT_HANDLERS_TIMEOUT_S."""
    code = _spin(make_node, args)
    if exit_process:
        _exit_process(code)
    return code


def _spin(make_node, args) -> int:
    stop = threading.Event()
    starting = [True]

    def on_signal(signum, frame):
        if stop.is_set():  # the node is already closing: let it finish (the learner's checkpoint)
            os.write(2, f"[kuavo_rl] signal {signum} while closing: finishing first\n".encode())
            return
        stop.set()
        if starting[0]:  # still inside make_node (imports, resume): nothing to save, do not wait for it
            raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    node = None
    code = 0
    try:
        try:
            rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
            try:
                node = make_node()
            finally:
                starting[0] = False
            while rclpy.ok() and not stop.is_set() and not getattr(node, "done", False):
                rclpy.spin_once(node, timeout_sec=0.1)
            code = getattr(node, "exit_code", 0)  # e.g. the learner's 3 when training diverged
        except ConfigError as error:
            print(f"[kuavo_rl] configuration error: {error}", file=sys.stderr, flush=True)
            code = 2
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            stop.set()  # from here on, signals only wait for close()
            try:
                if node is not None:
                    try:
                        node.close()
                    finally:
                        node.destroy_node()
            finally:
                rclpy.try_shutdown()
    except Exception:
        traceback.print_exc()
        code = 1
    return code


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    try:  # rcutils logs through C stdio, which os._exit does not flush
        import ctypes
        ctypes.CDLL(None).fflush(None)
    except Exception:
        pass


def _exit_process(code: int) -> None:
    """Run the atexit handlers (bounded), flush stdout/stderr and leave without interpreter teardown."""
    _flush_stdio()
    watchdog = threading.Timer(EXIT_HANDLERS_TIMEOUT_S, os._exit, (code,))
    watchdog.daemon = True
    watchdog.start()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython: what Py_Finalize would call
    if run_exit_handlers is not None:
        try:
            run_exit_handlers()
        except BaseException:
            pass
    _flush_stdio()
    os._exit(code)
