"""What every kuavo_rl node shares: the experiment configuration parameters and the spin loop."""
from __future__ import annotations

import signal
import sys
import threading

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.signals import SignalHandlerOptions

from kuavo_rl.config import ConfigError, ExperimentConfig, load_config


def declare(node, name: str, default, description: str):
    return node.declare_parameter(name, default, ParameterDescriptor(description=description)).value


def load_node_config(node) -> ExperimentConfig:
    """Every node reads the same experiment YAML (config_file) plus `section.key=value` overrides."""
    path = declare(node, "config_file", "", "experiment YAML (config/*.yaml); empty = built-in defaults")
    overrides = declare(node, "overrides", [""], "section.key=value overrides applied after config_file")
    return load_config(path or None, [o for o in overrides if o], pipeline=True)


def run_node(make_node, args=None) -> int:
    """Spin until the node says it is done or the process gets SIGINT/SIGTERM; always close the node
    while the ROS context is still valid (so a learner can save and acknowledge its last checkpoint)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = make_node()
        while rclpy.ok() and not stop.is_set() and not getattr(node, "done", False):
            rclpy.spin_once(node, timeout_sec=0.1)
    except ConfigError as error:
        print(f"[kuavo_rl] configuration error: {error}", file=sys.stderr, flush=True)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
