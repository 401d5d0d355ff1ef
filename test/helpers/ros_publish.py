"""Publisher process for the DDS round-trip tests: publishes the fixture message of each given
type (or a big transition batch) every 100 ms until killed."""
import sys
import time

import rclpy
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

import kuavo_msgs.msg as msgs
from helpers.msg_fixtures import make

QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)


def big_batch():
    from helpers.big_batch import make_big_batch
    from kuavo_rl.codec import batch_to_msg
    return batch_to_msg(msgs.TransitionBatch(), make_big_batch())


def main() -> None:
    rclpy.init()
    node = rclpy.create_node("fixture_publisher")
    publishers = []
    for name in sys.argv[1:]:
        if name == "big_batch":
            publishers.append((node.create_publisher(msgs.TransitionBatch, "/test/big_batch", QOS), big_batch()))
        else:
            publishers.append((node.create_publisher(getattr(msgs, name), f"/test/{name}", QOS), make(name)))
    try:
        while rclpy.ok():
            for publisher, message in publishers:
                publisher.publish(message)
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
