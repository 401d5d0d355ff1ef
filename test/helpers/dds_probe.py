"""A process that watches (or intrudes on) a run over DDS from inside a network namespace.

    python -m helpers.dds_probe status OUT.jsonl       every learner and actor status, one JSON line each
    python -m helpers.dds_probe stranger OUT.json S    for S seconds: list the topics it can see and
                                                       publish unsigned e-stops (obeyed from anyone)
Runs until SIGINT/SIGTERM (status) or S seconds (stranger)."""
from __future__ import annotations

import json
import signal
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException

from kuavo_msgs.msg import ActorStatus, Intervention, LearnerStatus
from kuavo_rl import qos, topics


def status_record(kind: str, msg) -> dict:
    record = {"kind": kind, "time": time.monotonic()}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if isinstance(value, (bool, int, float, str)):
            record[name] = value
        elif name.startswith("actor_"):  # LearnerStatus' per-actor link arrays
            record[name] = list(value)
    return record


def watch_status(out_path: str) -> None:
    node = rclpy.create_node("status_probe")
    with open(out_path, "w") as out:
        def write(kind):
            return lambda msg: (out.write(json.dumps(status_record(kind, msg)) + "\n"), out.flush())
        node.create_subscription(LearnerStatus, topics.LEARNER_STATUS, write("learner"), qos.STATUS)
        node.create_subscription(ActorStatus, topics.ACTOR_STATUS, write("actor"), qos.STATUS)
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass


def stranger(out_path: str, seconds: float) -> None:
    node = rclpy.create_node("stranger")
    publisher = node.create_publisher(Intervention, topics.INTERVENTION, qos.INTERVENTION)
    seen: set[str] = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        others = [name for name, _ in node.get_topic_names_and_types() if name.startswith(topics.PREFIX)
                  and node.count_publishers(name) + node.count_subscribers(name) > (name == topics.INTERVENTION)]
        seen.update(others)  # the run's topics (its own e-stop publisher does not count)
        publisher.publish(Intervention(estop=True))
        rclpy.spin_once(node, timeout_sec=0.5)
    with open(out_path, "w") as out:
        json.dump({"topics": sorted(seen)}, out)


def main() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    rclpy.init()
    try:
        if sys.argv[1] == "status":
            watch_status(sys.argv[2])
        else:
            stranger(sys.argv[2], float(sys.argv[3]))
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
