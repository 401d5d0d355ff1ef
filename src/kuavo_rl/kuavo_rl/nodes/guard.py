"""What stands between the network and a node: only this run's signed messages get in, and no
message, however malformed, takes the node down (it is refused with a log line and counted)."""
from __future__ import annotations

from collections import Counter
from typing import Callable

from kuavo_rl.auth import Signer, Verifier, key_path, load_or_create_key
from kuavo_rl.config import ExperimentConfig


def run_key(cfg: ExperimentConfig) -> bytes:
    """The run key every node of this run signs with (created by the first node if missing)."""
    return load_or_create_key(key_path(cfg.run.run_dir, cfg.run.key_file))


class Guard:
    """A node's signer and its guarded subscriptions."""

    def __init__(self, node, cfg: ExperimentConfig, role: str):
        self.node = node
        self.key = run_key(cfg)
        self.signer = Signer(self.key, role)
        self.rejected: Counter[str] = Counter()  # topic -> messages refused

    def sign(self, msg):
        return self.signer.sign(msg)

    def subscribe(self, msg_type, topic: str, handler: Callable, qos_profile, signed: bool = True):
        """Subscribe `handler`; with `signed`, only messages signed by this run reach it. Whatever
        the handler raises is a refusal of that one message, logged with its reason."""
        verifier = Verifier(self.key) if signed else None

        def callback(msg) -> None:
            try:
                if verifier is not None:
                    verifier.verify(msg)
                handler(msg)
            except Exception as error:  # noqa: BLE001 - a node never dies on input
                self.refuse(topic, error)

        return self.node.create_subscription(msg_type, topic, callback, qos_profile)

    def refuse(self, topic: str, reason) -> None:
        self.rejected[topic] += 1
        self.node.get_logger().warning(f"refused message on {topic}: {reason}")
