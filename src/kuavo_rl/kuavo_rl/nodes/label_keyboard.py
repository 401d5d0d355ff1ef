"""`kuavo-rl label`: the operator's episode labels from the keyboard, for a run without a headset.

Type `s` (success) or `f` (failure) and Enter; `q` or end of input quits. Each label is published,
signed with the run's key, on the episode-label topic a few times under one id (the actor applies
it once), exactly as the VR node publishes the headset's Y and X buttons.
"""
from __future__ import annotations

import os
import sys
import time

import rclpy
from rclpy.node import Node

from kuavo_msgs.msg import EpisodeLabel
from kuavo_rl import qos, topics
from kuavo_rl.codec import label_to_msg
from kuavo_rl.config import ExperimentConfig
from kuavo_rl.nodes.guard import Guard
from kuavo_rl.protocol import LABEL_FAILURE, LABEL_NAMES, LABEL_SUCCESS, EpisodeLabelInput

KEYS = {"s": LABEL_SUCCESS, "success": LABEL_SUCCESS, "f": LABEL_FAILURE, "failure": LABEL_FAILURE}
REPEATS, REPEAT_PERIOD_S = 5, 0.1  # 0.5 s of repeats, like the VR node's announce window
DISCOVERY_S = 1.0  # let the actor's subscription match before the first label


class KeyboardLabeller(Node):
    def __init__(self, cfg: ExperimentConfig):
        super().__init__("kuavo_label_keyboard")
        self.guard = Guard(self, cfg, "keyboard")
        self.publisher = self.create_publisher(EpisodeLabel, topics.EPISODE_LABEL, qos.EPISODE_LABEL)
        self.next_id = int.from_bytes(os.urandom(3), "little")  # a restarted labeller never repeats an id

    def send(self, label: int) -> None:
        self.next_id += 1
        message = label_to_msg(EpisodeLabel(), EpisodeLabelInput(label, self.next_id, "keyboard"))
        for _ in range(REPEATS):
            message.stamp = self.get_clock().now().to_msg()
            self.publisher.publish(self.guard.sign(message))
            time.sleep(REPEAT_PERIOD_S)


def parse_key(line: str) -> int | None:
    """The label a typed line asks for, None to quit; ValueError for anything else."""
    key = line.strip().lower()
    if key in ("q", "quit", "exit"):
        return None
    if key not in KEYS:
        raise ValueError(f"'{key}' is not a label: type s (success), f (failure) or q (quit)")
    return KEYS[key]


def run(cfg: ExperimentConfig, lines=sys.stdin, out=sys.stderr) -> int:
    rclpy.init()
    node = KeyboardLabeller(cfg)
    try:
        time.sleep(DISCOVERY_S)
        print("[kuavo-rl label] s + Enter: this episode succeeded; f + Enter: it failed; q: quit", file=out, flush=True)
        for line in lines:
            if not line.strip():
                continue
            try:
                label = parse_key(line)
            except ValueError as error:
                print(f"[kuavo-rl label] {error}", file=out, flush=True)
                continue
            if label is None:
                break
            node.send(label)
            print(f"[kuavo-rl label] sent: {LABEL_NAMES[label]} (label {node.next_id})", file=out, flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
