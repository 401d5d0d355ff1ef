"""Transition throughput over DDS between two processes: TransitionBatch messages of B transitions
(14-dim action, 15-dim observation) from a publisher process to this one, RELIABLE + KEEP_ALL as
the pipeline uses. Run by hand: ./kuavo run python bench/bench_transport.py [--batch 50 500 5000]"""
import argparse
import os
import random
import subprocess
import sys
import time

PUBLISHER = r"""
import sys, time, numpy as np, rclpy
import kuavo_msgs.msg as msgs
from kuavo_rl import qos
from kuavo_rl.codec import batch_to_msg
from kuavo_rl.protocol import StepBatch
n, count = int(sys.argv[1]), int(sys.argv[2])
rows = [{"transition_sequence": i, "episode_id": 0, "step_index": i, "observation": np.zeros(15), "action": np.zeros(14),
         "next_observation": np.zeros(15), "reward_terms": [0.0, 0.0], "raw_reward": 0.0, "terminated": False,
         "truncated": False, "intervention": False, "evaluation": False, "policy_version": 0} for i in range(n)]
batch = StepBatch.from_rows("bench", 0, 15, 14, ("a", "b"), rows)
rclpy.init()
node = rclpy.create_node("bench_pub")
pub = node.create_publisher(msgs.TransitionBatch, "/bench/transitions", qos.TRANSITIONS)
while pub.get_subscription_count() == 0:
    time.sleep(0.05)
time.sleep(0.5)
for k in range(count):
    batch.sequence = k
    pub.publish(batch_to_msg(msgs.TransitionBatch(), batch))
time.sleep(5)
"""


def measure(batch_size: int, count: int) -> tuple[float, float]:
    import rclpy

    import kuavo_msgs.msg as msgs
    from kuavo_rl import qos
    from kuavo_rl.codec import batch_from_msg
    received = []
    node = rclpy.create_node(f"bench_sub_{batch_size}")
    node.create_subscription(msgs.TransitionBatch, "/bench/transitions",
                             lambda m: received.append(batch_from_msg(m).count), qos.TRANSITIONS)
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(batch_size), str(count)])
    while not received:
        rclpy.spin_once(node, timeout_sec=0.1)
    start = time.perf_counter()
    while len(received) < count and publisher.poll() is None:
        rclpy.spin_once(node, timeout_sec=0.1)
    elapsed = time.perf_counter() - start
    publisher.kill()
    node.destroy_node()
    return (len(received) - 1) / elapsed, (sum(received) - received[0]) / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--seconds", type=float, default=5.0, help="approximate duration per size")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    import rclpy
    rclpy.init()
    print(f"{'batch':>6} {'batches/s':>10} {'transitions/s':>14}")
    for batch_size in args.batch:
        count = max(20, int(args.seconds * 200_000 / batch_size / 10))
        batches, transitions = measure(batch_size, count)
        print(f"{batch_size:>6} {batches:>10.1f} {transitions:>14.0f}", flush=True)
    rclpy.shutdown()


if __name__ == "__main__":
    main()
