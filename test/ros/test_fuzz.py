"""Fuzzing the running pipeline: env, actor and learner processes over DDS get hundreds of malformed or
hostile messages of every type they subscribe to (unsigned, foreign token, forged MAC, replayed, and
signed-but-invalid: wrong sizes, NaN/inf, huge values, wrong dims and reward terms, stale and huge
weight versions, garbage weights with a matching sha256, ...). No node exits, every message that is
refused is logged with the expected reason (checked one by one, in order), the real actor keeps
training, and the valid transition batches interleaved with the fuzz are all in the learner's buffer
exactly once. The fuzz is generated deterministically from SEED. (The gaps it found in the actor core
are unit tests in test/unit/test_actor_core.py.)"""
from __future__ import annotations

import array
import hashlib
import hmac
import os
import pickle
import re
import time
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml

import kuavo_msgs.msg as msgs
from helpers.pipeline import CONFIG, TWO_DIM, wait_for
from helpers.signing import run_signer
from kuavo_msgs.srv import SaveCheckpoint
from kuavo_rl import qos, topics
from kuavo_rl.auth import Signer, signed_bytes
from kuavo_rl.codec import batch_to_msg
from kuavo_rl.protocol import StepBatch

pytestmark = pytest.mark.slow  # separate ROS processes over DDS

SEED = 20260
PER_TYPE = 210  # hostile messages per subscribed type that must each be refused with a logged reason
IGNORED_PER_TYPE = 12  # signed messages the node ignores by design (not for it / an old step): no log line
TERMS = ("action_error_sq_mean", "action_error_norm")
OBS_DIM, ACT_DIM = 3, 2
FUZZ_ACTOR, FUZZ_BASE = "fuzz-actor", 10**9  # valid batches: transition sequences far from the real actor's
VALID_BATCHES, VALID_ROWS, VALID_RESENDS = 60, 5, 10
EVIL_ACTOR = "fuzz-evil"  # the signed-but-invalid batches (their sequence numbers name them in the log)
MAX_BATCH = 200
OVERRIDES = TWO_DIM + [
    "run.total_env_steps=100000000", "run.progress_line=false", "env.timing=realtime", "env.rate_hz=100",
    "env.episode_steps=20", "algo.learning_starts=40", "algo.batch_size=32", "algo.hidden_dims=[32,32]",
    # One weights message per learner: the actor's weights subscription keeps only the newest message,
    # so a genuine one arriving while a fuzz message waits in that queue would push it out.
    "learner.publish_weights_every_updates=100000000", "actor.sync_with_learner=false",
    "actor.eval_every_episodes=0", "actor.final_eval_episodes=0", f"learner.max_batch_transitions={MAX_BATCH}"]

NOT_FROM_RUN, BAD_MAC, REPLAYED = "not from this run", "bad signature", "replayed message"
LOCKSTEP = ("action", "observation", "weights", "ack", "intervention")  # one fuzz message in flight each
TOPIC = {"action": topics.ACTION, "observation": topics.OBSERVATION, "weights": topics.POLICY_WEIGHTS,
         "ack": topics.TRANSITIONS_ACK, "intervention": topics.INTERVENTION, "batch": topics.TRANSITIONS}
NODE_OF = {"action": "env", "observation": "actor", "weights": "actor", "ack": "actor", "intervention": "actor",
           "batch": "learner"}


# ---- reading the nodes' logs as they grow ------------------------------------------------------------
class LogTail:
    REFUSED = re.compile(r"refused message on (\S+): (.*)")
    REJECTED = re.compile(r"batch (\S+)#(\d+) rejected: (.*)")

    def __init__(self, path: Path):
        self.path, self.handle, self.partial = path, None, ""
        self.refused: dict[str, list[str]] = defaultdict(list)  # topic -> reasons, in order
        self.rejected: dict[tuple[str, int], list[str]] = defaultdict(list)  # (actor_id, sequence) -> reasons
        self.lines: list[str] = []

    def poll(self) -> None:
        if self.handle is None:
            if not self.path.exists():
                return
            self.handle = self.path.open()
        data = self.partial + self.handle.read()
        *lines, self.partial = data.split("\n")
        for line in lines:
            self.lines.append(line)
            if match := self.REFUSED.search(line):
                self.refused[match.group(1)].append(match.group(2))
            elif match := self.REJECTED.search(line):
                self.rejected[(match.group(1), int(match.group(2)))].append(match.group(3))

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


# ---- message builders ----------------------------------------------------------------------------------
def f32(values) -> array.array:
    return array.array("f", np.asarray(values, np.float32).tobytes())


def bad_floats(rng, n: int, kind: str) -> np.ndarray:
    values = rng.uniform(-1, 1, n).astype(np.float32)
    values[rng.integers(0, n)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e30}[kind]
    return values


def valid_rows(rng, first_sequence: int, n: int, episode: int) -> list[dict]:
    return [{"transition_sequence": first_sequence + i, "episode_id": episode, "step_index": i + 1,
             "observation": rng.uniform(-1, 1, OBS_DIM), "action": rng.uniform(-1, 1, ACT_DIM),
             "next_observation": rng.uniform(-1, 1, OBS_DIM), "reward_terms": rng.uniform(0, 1, 2),
             "raw_reward": -float(rng.uniform(0, 1)), "terminated": False, "truncated": i == n - 1,
             "intervention": bool(rng.random() < 0.2), "evaluation": False, "policy_version": 0}
            for i in range(n)]


def valid_batch(sequence: int, incarnation: str) -> StepBatch:
    rng = np.random.default_rng(SEED + sequence)
    rows = valid_rows(rng, FUZZ_BASE + sequence * VALID_ROWS, VALID_ROWS, 10**6 + sequence)
    return StepBatch.from_rows(FUZZ_ACTOR, sequence, OBS_DIM, ACT_DIM, TERMS, rows, incarnation)


class Fuzz:
    """Builds the hostile messages; each builder returns (make(ctx) -> message, expected reason or None).
    Messages are signed in make(), at send time, so the signer's counter only ever increases on the wire."""

    def __init__(self, rng, run_dir: Path, policy_state: dict):
        self.rng = rng
        self.run_dir = run_dir
        self.policy_state = policy_state
        self.evil_sequence = 0
        self.weights_decode_stage = 0

    # The ways a message can fail authentication, whatever its payload; build(ctx) makes the payload.
    def auth_attack(self, kind: str, build, replay_topic: str):
        rng = self.rng
        if kind == "unsigned":
            return build, NOT_FROM_RUN
        if kind == "foreign_token":  # a correctly signed message of another run
            return (lambda ctx: ctx["foreign"].sign(build(ctx))), NOT_FROM_RUN
        if kind == "huge_token":
            def make(ctx):
                msg = ctx["signer"].sign(build(ctx))
                msg.auth.run_token = "f" * int(rng.integers(17, 100_000))
                return msg
            return make, NOT_FROM_RUN
        if kind == "stolen_token":  # this run's token, but the MAC of another key
            def make(ctx):
                msg = ctx["foreign"].sign(build(ctx))
                msg.auth.run_token = ctx["signer"].token
                return msg
            return make, BAD_MAC
        if kind in ("forged_payload", "forged_counter", "forged_sender", "garbage_mac"):
            def make(ctx):
                msg = ctx["signer"].sign(build(ctx))
                if kind == "forged_payload":
                    alter(msg, rng)
                elif kind == "forged_counter":  # would poison the receiver's replay state if believed
                    msg.auth.counter = int(rng.integers(2**40, 2**62))
                elif kind == "forged_sender":
                    msg.auth.sender = "learner/" + "0" * 12
                else:
                    msg.auth.mac = str(rng.choice(["", "0" * 64, rng.bytes(32).hex(), "zz" * 40]))
                return msg
            return make, BAD_MAC
        if kind == "replay":  # a genuine message of the node that sends on this topic, re-sent as it was
            return (lambda ctx: ctx["replay"](replay_topic)), REPLAYED
        raise ValueError(kind)

    AUTH_KINDS = ("unsigned", "foreign_token", "huge_token", "stolen_token", "forged_payload", "forged_counter",
                  "forged_sender", "garbage_mac", "replay")

    def signed(self, build, reason: str):
        return (lambda ctx: ctx["signer"].sign(build())), reason

    VECTOR_KINDS = ("size", "nan", "inf", "empty")

    def vector_attack(self, kind: str, build, size_reason, nan_reason: str):
        """A signed message whose action vector has the wrong size, NaN/inf, or nothing (`build(action)`)."""
        rng = self.rng
        if kind == "size":
            n = int(rng.choice([1, 3, 14, 1000]))
            return self.signed(lambda: build(rng.uniform(-1, 1, n)), size_reason(n))
        if kind in ("nan", "inf"):
            return self.signed(lambda: build(bad_floats(rng, ACT_DIM, kind)), nan_reason)
        return self.signed(lambda: build(np.zeros(0)), size_reason(0))

    # -- env node <- ActionCommand ---------------------------------------------------------------------------
    def action(self, i: int):
        rng = self.rng

        def build(action=None):
            return msgs.ActionCommand(episode_id=10**12 + i, step_index=int(rng.integers(0, 2**32)),
                                      action=f32(rng.uniform(-1, 1, ACT_DIM) if action is None else action),
                                      intervention=bool(rng.random() < 0.5))

        kinds = self.AUTH_KINDS + self.VECTOR_KINDS
        kind = kinds[i % len(kinds)]
        if kind in self.VECTOR_KINDS:
            return self.vector_attack(kind, build, lambda n: f"action has {n} values, env expects {ACT_DIM}",
                                      "action contains NaN/inf")
        return self.auth_attack(kind, lambda ctx: build(), "action")

    def action_ignored(self, i: int):
        """Signed, well-formed answers to a step the env is not at: ignored as stale resends (no log)."""
        values = np.full(ACT_DIM, 1e30 if i % 2 else 0.5)
        return self.signed(lambda: msgs.ActionCommand(episode_id=10**12 + i, step_index=7, action=f32(values)), None)

    # -- actor <- EnvObservation ----------------------------------------------------------------------------
    def observation(self, i: int):
        rng = self.rng

        def build(observation=None, names=TERMS, terms=None, raw=-0.1):
            # Far-away ids: an observation with the ids the actor answered last is taken for a resend.
            return msgs.EnvObservation(
                episode_id=10**12 + i, step_index=int(rng.integers(1, 2**32)),
                observation=f32(rng.uniform(-1, 1, OBS_DIM) if observation is None else observation),
                reward_term_names=list(names), reward_terms=f32(rng.uniform(0, 1, 2) if terms is None else terms),
                raw_reward=float(raw))

        kinds = self.AUTH_KINDS + ("size", "nan_obs", "inf_terms", "raw_nan", "raw_inf", "term_names", "term_count")
        kind = kinds[i % len(kinds)]
        if kind == "size":
            n = int(rng.choice([0, 2, 4, 15, 5000]))
            return self.signed(lambda: build(rng.uniform(-1, 1, n)), f"observation has {n} values, expected {OBS_DIM}")
        if kind == "nan_obs":
            return self.signed(lambda: build(bad_floats(rng, OBS_DIM, "nan")), "NaN/inf")
        if kind == "inf_terms":
            return self.signed(lambda: build(terms=bad_floats(rng, 2, "-inf")), "NaN/inf")
        if kind in ("raw_nan", "raw_inf"):
            return self.signed(lambda: build(raw=float("nan") if kind == "raw_nan" else float("inf")), "NaN/inf")
        if kind == "term_names":
            return self.signed(lambda: build(names=("distance", "grasp")), "observation has reward terms")
        if kind == "term_count":
            return self.signed(lambda: build(terms=np.ones(3)), "observation has 3 reward terms but 2 names")
        return self.auth_attack(kind, lambda ctx: build(rng.uniform(-1e30, 1e30, OBS_DIM)), "observation")

    # -- actor <- PolicyWeights -----------------------------------------------------------------------------
    def weights(self, i: int):
        rng = self.rng

        def build(data: bytes, version=None, run_id=None, backend="lerobot_sac", checksum=None):
            return msgs.PolicyWeights(
                version=int(rng.integers(2, 1000) if version is None else version),
                learner_run_id=rng.bytes(6).hex() if run_id is None else run_id,  # a "new learner": no version check
                learner_step=int(rng.integers(0, 2**40)), format="torch.save/state_dict", backend=backend,
                checksum=hashlib.sha256(data).hexdigest() if checksum is None else checksum,
                data=array.array("B", data))

        state = self.policy_state
        kinds = self.AUTH_KINDS + ("stale", "stale_real_run", "jump", "jump_real_run", "backend", "checksum",
                                   "garbage", "empty", "nan", "shape", "missing", "pickle")
        kind = kinds[i % len(kinds)]
        self.weights_decode_stage += kind in self.DECODE_STAGE  # these reach decoding: counted by the actor
        from kuavo_rl.algos.base import encode_weights
        if kind in ("stale", "stale_real_run"):  # version 0 is never newer than what the actor has
            return (lambda ctx: ctx["signer"].sign(build(encode_weights(state)[0], 0, "" if kind == "stale"
                                                         else ctx["learner_run_id"]))), "is not newer than"
        if kind in ("jump", "jump_real_run"):
            return (lambda ctx: ctx["signer"].sign(build(encode_weights(state)[0], int(rng.integers(10**6, 2**63)),
                                                         "" if kind == "jump" else ctx["learner_run_id"]))), \
                "jumps more than actor.max_weights_version_jump"
        if kind == "backend":
            return self.signed(lambda: build(encode_weights(state)[0], backend="sb3_sac"),
                               "weights from backend sb3_sac")
        if kind == "checksum":
            return self.signed(lambda: build(encode_weights(state)[0], checksum="0" * 64), "checksum mismatch")
        if kind == "garbage":  # random bytes, with their correct sha256
            return self.signed(lambda: build(rng.bytes(int(rng.integers(1, 200_000)))), "rejected:")
        if kind == "empty":
            return self.signed(lambda: build(b""), "rejected:")
        if kind == "nan":  # the right tensors, poisoned
            poisoned = {k: v.clone().fill_(float("nan")) if v.is_floating_point() else v for k, v in state.items()}
            return self.signed(lambda: build(encode_weights(poisoned)[0]), "contains NaN/inf")
        if kind == "shape":
            key = sorted(state)[int(rng.integers(0, len(state)))]
            reshaped = {**state, key: state[key].new_zeros(tuple(state[key].shape) + (2,))}
            return self.signed(lambda: build(encode_weights(reshaped)[0]), f"weights tensor '{key}' has shape")
        if kind == "missing":
            partial = {k: v for k, v in state.items() if k != min(state)}
            return self.signed(lambda: build(encode_weights(partial)[0]), "do not fit this policy")
        if kind == "pickle":  # code in the payload: torch.load(weights_only=True) must never run it
            payload = pickle.dumps(Trap(str(self.run_dir / "PWNED")))
            return self.signed(lambda: build(payload), "rejected:")
        return self.auth_attack(kind, lambda ctx: build(encode_weights(state)[0]), "weights")

    DECODE_STAGE = ("checksum", "garbage", "empty", "nan", "shape", "missing", "pickle")  # counted in weights_rejected

    # -- actor <- BatchAck ------------------------------------------------------------------------------------
    def ack(self, i: int):
        rng = self.rng

        def build(ctx):  # what a forger wants: the real actor drops its unpersisted batches and stops
            n = int(rng.integers(1, 500))
            return msgs.BatchAck(actor_id="actor0", learner_run_id=ctx["learner_run_id"],
                                 actor_incarnation=ctx["actor_incarnation"], received=[], persisted=list(range(n)),
                                 rejected=list(range(n, 2 * n)), rejected_reasons=["fuzz"] * n,
                                 earlier_env_steps=int(rng.integers(10**9, 2**63)))

        return self.auth_attack(self.AUTH_KINDS[i % len(self.AUTH_KINDS)], build, "ack")

    def ack_ignored(self, i: int):
        """Signed acks for another process of actor0 or another actor: every actor filters them out."""
        def make(ctx):
            other = ("actor0", "0" * 12) if i % 2 else ("nobody", ctx["actor_incarnation"])
            return ctx["signer"].sign(msgs.BatchAck(actor_id=other[0], actor_incarnation=other[1],
                                                    learner_run_id=ctx["learner_run_id"], persisted=list(range(100)),
                                                    earlier_env_steps=10**12))
        return make, None

    # -- actor <- Intervention (no e-stops: those are obeyed unsigned, by design) -------------------------------
    def intervention(self, i: int):
        rng = self.rng

        def build(action=None, reset=False):
            return msgs.Intervention(active=True, action=f32(rng.uniform(-1, 1, ACT_DIM) if action is None else action),
                                     source="fuzz", estop=False, estop_reset=reset)

        kinds = self.AUTH_KINDS + self.VECTOR_KINDS + ("unsigned_reset",)
        kind = kinds[i % len(kinds)]
        if kind in self.VECTOR_KINDS:
            return self.vector_attack(kind, build, lambda n: f"intervention action has {n} dims",
                                      "intervention action contains NaN/inf")
        if kind == "unsigned_reset":  # only the run's own VR node may clear an e-stop
            return (lambda ctx: build(reset=True)), NOT_FROM_RUN
        return self.auth_attack(kind, lambda ctx: build(), "intervention")

    # -- learner <- TransitionBatch ---------------------------------------------------------------------------
    def batch(self, i: int):
        rng = self.rng
        sequence = self.evil_sequence
        self.evil_sequence += 1

        def rows(n=8):
            return valid_rows(rng, 5 * 10**9 + sequence * 1000, n, sequence)

        def build(mutate=None, n=8, names=TERMS, obs_dim=OBS_DIM, act_dim=ACT_DIM):
            batch = StepBatch.from_rows(EVIL_ACTOR, sequence, OBS_DIM, ACT_DIM, TERMS, rows(n), "evil")
            if mutate is not None:
                mutate(batch)
            msg = batch_to_msg(msgs.TransitionBatch(), batch)
            msg.reward_term_names = list(names)
            if (obs_dim, act_dim) != (OBS_DIM, ACT_DIM):  # a consistent message of other dimensions
                msg.observation_dim, msg.action_dim = obs_dim, act_dim
                msg.observations, msg.next_observations = f32(np.zeros(n * obs_dim)), f32(np.zeros(n * obs_dim))
                msg.actions = f32(np.zeros(n * act_dim))
            return msg

        def poison(field, kind):
            def mutate(batch):
                values = getattr(batch, field)
                values.flat[int(rng.integers(0, values.size))] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[kind]
            return mutate

        def truncated(field):
            def make():
                msg = build()
                values = getattr(msg, field)
                setattr(msg, field, values[: len(values) - int(rng.integers(1, len(values) + 1))])
                return msg
            return make

        def count_lie():
            msg = build()
            msg.count = int(rng.choice([0, 9, 10**9, 2**32 - 1]))
            return msg

        def oversized_field():
            msg = build()
            msg.observations = f32(np.zeros(100_000))
            return msg

        def duplicates(batch):
            batch.transition_sequences[1] = batch.transition_sequences[0]

        floats = ("observations", "actions", "next_observations", "reward_terms", "raw_rewards")
        kinds = self.AUTH_KINDS + ("dims", "obs_dims", "terms", "nan", "inf", "huge", "truncated", "count",
                                   "oversized_field", "duplicates", "too_many", "reward_names_only")
        kind = kinds[i % len(kinds)]
        field = floats[int(rng.integers(0, len(floats)))]
        rejection = {
            "dims": (lambda: build(act_dim=3), "dimension mismatch"),
            "obs_dims": (lambda: build(obs_dim=int(rng.choice([1, 4, 15]))), "dimension mismatch"),
            "terms": (lambda: build(names=("distance", "grasp")), "reward terms"),
            "reward_names_only": (lambda: build(names=("action_error_sq_mean",)), "field 'reward_terms' has"),
            "nan": (lambda: build(poison(field, "nan")), "NaN/inf"),
            "inf": (lambda: build(poison(field, "inf")), "NaN/inf"),
            "huge": (lambda: build(poison(field, "huge")), "learner.max_abs_value"),
            "truncated": (truncated(rng.choice(list(StepBatch.ARRAY_FIELDS))), "values, expected"),
            "count": (count_lie, "values, expected"),
            "oversized_field": (oversized_field, "field 'observations' has 100000 values"),
            "duplicates": (lambda: build(duplicates), "duplicate transition sequence numbers"),
            "too_many": (lambda: build(n=MAX_BATCH + 1), "exceeds learner.max_batch_transitions"),
        }
        if kind in rejection:
            make, reason = self.signed(*rejection[kind])
            return make, reason, sequence  # refused by the learner's validation: logged with its sequence
        make, reason = self.auth_attack(kind, lambda ctx: build(), "batch")
        return make, reason, None


class Trap:
    """Unpickling this would create a file: proof that a weights payload ran code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def alter(msg, rng) -> None:
    """Change one payload field of a signed message (its MAC then no longer matches). Never the e-stop
    flag: an e-stop is obeyed even when its signature is bad, by design."""
    names = [name for name, value in ((n, getattr(msg, n)) for n in msg.get_fields_and_field_types())
             if name not in ("auth", "stamp", "estop") and (isinstance(value, (bool, int, float, str))
                                                             or (isinstance(value, array.array) and len(value)))]
    name = names[int(rng.integers(0, len(names)))]
    value = getattr(msg, name)
    if isinstance(value, bool):
        setattr(msg, name, not value)
    elif isinstance(value, int):
        setattr(msg, name, value ^ 1)
    elif isinstance(value, float):
        setattr(msg, name, value + 1.0)
    elif isinstance(value, str):
        setattr(msg, name, value + "x")
    else:
        setattr(msg, name, value + array.array(value.typecode, value[:1]))


# ---- the test ----------------------------------------------------------------------------------------------
def test_fuzzed_nodes_refuse_with_reasons_keep_running_and_keep_valid_data(tmp_path, rclpy_context):
    from kuavo_rl.algos import make_actor_policy
    from kuavo_rl.checkpoint import load_latest
    from kuavo_rl.config import load_config
    from kuavo_rl.supervisor import start_node, stop_node, write_params_file

    started = time.monotonic()
    run_dir = tmp_path / "run"
    params = write_params_file(run_dir / "params.yaml", str(CONFIG), OVERRIDES, run_dir)
    logs = run_dir / "logs"
    signer = run_signer(run_dir, "fuzz")
    tails = {role: LogTail(logs / f"{role}.log") for role in ("learner", "env", "actor")}
    nodes = {}

    node = rclpy.create_node("fuzzer", context=rclpy_context)
    executor = rclpy.executors.SingleThreadedExecutor(context=rclpy_context)
    executor.add_node(node)
    qos_of = {"action": qos.STEP, "observation": qos.STEP, "weights": qos.LATEST_WEIGHTS, "ack": qos.ACKS,
              "intervention": qos.INTERVENTION, "batch": qos.TRANSITIONS}
    types = {"action": msgs.ActionCommand, "observation": msgs.EnvObservation, "weights": msgs.PolicyWeights,
             "ack": msgs.BatchAck, "intervention": msgs.Intervention, "batch": msgs.TransitionBatch}
    publishers = {key: node.create_publisher(types[key], TOPIC[key], qos_of[key]) for key in TOPIC}
    # Genuine messages of the nodes, to replay; the sender's role says whose they are.
    captured: dict[str, deque] = {key: deque(maxlen=50) for key in TOPIC}
    genuine_sender = {"action": "actor-actor0/", "observation": "env/", "weights": "learner/", "ack": "learner/",
                      "batch": "actor-actor0/", "intervention": "fuzz/"}
    fuzz_acks: list = []

    def capture(key):
        def callback(msg):
            expected_mac = hmac.new(signer.key, signed_bytes(msg), "sha256").hexdigest()
            signed_by_run = hmac.compare_digest(msg.auth.mac, expected_mac)
            if signed_by_run and msg.auth.sender.startswith(genuine_sender[key]):
                captured[key].append(msg)
            if signed_by_run and key == "ack" and msg.actor_id == FUZZ_ACTOR:
                fuzz_acks.append(msg)
        return callback

    for key in ("action", "observation", "weights", "ack", "batch"):
        node.create_subscription(types[key], TOPIC[key], capture(key), qos_of[key])
    client = node.create_client(SaveCheckpoint, topics.SAVE_CHECKPOINT)

    def spin(seconds=0.0):
        end = time.monotonic() + seconds
        while True:
            executor.spin_once(timeout_sec=0.0005)
            if time.monotonic() >= end:
                return

    def poll_logs():
        for tail in tails.values():
            tail.poll()

    def save_checkpoint() -> dict:
        future = client.call_async(SaveCheckpoint.Request())
        wait_for(lambda: spin() or future.done(), 60, "SaveCheckpoint", poll_s=0)
        assert future.result().success, future.result().message
        return load_latest(run_dir / "checkpoints")

    def check_alive():
        for role, process in nodes.items():
            assert process.popen.poll() is None, f"{role} exited:\n" + "".join(process.lines[-30:])

    try:
        nodes.update({role: start_node(role, params, logs, echo=False) for role in ("learner", "env", "actor")})
        cfg = load_config(str(CONFIG), OVERRIDES, pipeline=True)  # while the nodes start: the actor's tensors
        policy_state = make_actor_policy(cfg.algo, OBS_DIM, ACT_DIM, 0).actor_module.state_dict()
        # ---- the real pipeline runs: genuine messages of every kind to replay, the learner's first weights
        wait_for(lambda: spin() or (check_alive() or all(captured[k] for k in ("action", "observation", "weights",
                                                                                   "ack", "batch"))),
                 60, "genuine messages on every topic", poll_s=0.01)
        genuine_weights = captured["weights"][-1]
        actor_incarnation = captured["batch"][-1].actor_incarnation
        harmless = signer.sign(msgs.Intervention(active=False, action=f32(np.zeros(ACT_DIM)), source="fuzz"))
        publishers["intervention"].publish(harmless)  # accepted (a release), then replayed by the fuzz
        captured["intervention"].append(harmless)
        spin(0.3)
        before = save_checkpoint()["counters"]["sender_env_steps"]
        fuzz_started = time.monotonic()

        ctx = {"signer": signer, "foreign": Signer(os.urandom(32), "fuzz"), "learner_run_id":
               genuine_weights.learner_run_id, "actor_incarnation": actor_incarnation,
               "replay": lambda key: captured[key][0]}  # the oldest: the node has long had the original

        # ---- the fuzz plan, deterministic from SEED
        rng = np.random.default_rng(SEED)
        fuzz = Fuzz(rng, run_dir, policy_state)
        plan: dict[str, list] = {}
        for key in LOCKSTEP:
            items = [getattr(fuzz, key)(i) for i in range(PER_TYPE)]
            if key in ("action", "ack"):
                items += [getattr(fuzz, f"{key}_ignored")(i) for i in range(IGNORED_PER_TYPE)]
            plan[key] = [items[j] for j in rng.permutation(len(items))]
        batches = [fuzz.batch(i) for i in range(PER_TYPE)]
        batches = [batches[j] for j in rng.permutation(len(batches))]
        fuzz_incarnation = "fuzz" + os.urandom(4).hex()
        valid = [valid_batch(s, fuzz_incarnation) for s in range(VALID_BATCHES)]
        rounds = max(len(items) for items in plan.values())
        valid_at = {round(r * rounds / VALID_BATCHES): r for r in range(VALID_BATCHES)}  # round -> sequence
        resend_at = set(rng.choice(np.arange(rounds // 4, rounds), VALID_RESENDS, replace=False).tolist())
        replay_at = set(rng.choice(np.arange(rounds // 4, rounds), VALID_RESENDS, replace=False).tolist())

        # ---- send: one fuzz message in flight per env/actor topic (the next goes once the last is refused:
        # the weights and intervention queues hold one message); the learner's queue (KEEP_ALL) keeps all
        expected = {key: [] for key in LOCKSTEP}
        expected_auth_batches, expected_rejections, valid_on_wire = [], {}, {}
        for round_ in range(rounds):
            for key in LOCKSTEP:
                if round_ < len(plan[key]):
                    make, reason = plan[key][round_]
                    publishers[key].publish(make(ctx))
                    if reason is not None:
                        expected[key].append(reason)
            if round_ < len(batches):
                make, reason, sequence = batches[round_]
                publishers["batch"].publish(make(ctx))
                if sequence is None:
                    expected_auth_batches.append(reason)
                else:
                    expected_rejections[(EVIL_ACTOR, sequence)] = reason
            if round_ in valid_at:
                sequence = valid_at[round_]
                valid_on_wire[sequence] = signer.sign(batch_to_msg(msgs.TransitionBatch(), valid[sequence]))
                publishers["batch"].publish(valid_on_wire[sequence])
            if round_ in resend_at:  # an actor's resend: the same batch signed anew, kept once
                sequence = int(rng.choice(sorted(valid_on_wire)))
                publishers["batch"].publish(signer.sign(batch_to_msg(msgs.TransitionBatch(), valid[sequence])))
            if round_ in replay_at:  # a valid batch replayed exactly as it was on the wire: refused
                publishers["batch"].publish(valid_on_wire[int(rng.choice(sorted(valid_on_wire)))])
                expected_auth_batches.append(REPLAYED)

            def caught_up():
                spin()
                poll_logs()
                return all(len(tails[NODE_OF[k]].refused[TOPIC[k]]) >= len(expected[k]) for k in LOCKSTEP)

            try:
                wait_for(caught_up, 10, f"the refusals of fuzz round {round_}", poll_s=0)
            except AssertionError:
                check_alive()
                missing = {k: expected[k][len(tails[NODE_OF[k]].refused[TOPIC[k]]):] for k in LOCKSTEP}
                raise AssertionError(f"round {round_}: messages not refused (expected reasons): {missing}") from None
        fuzz_seconds = time.monotonic() - fuzz_started

        def learner_done():
            spin()
            poll_logs()
            acked = {s for a in fuzz_acks for s in list(a.received) + list(a.persisted)}
            learner = tails["learner"]
            return (acked >= set(valid_on_wire) and len(learner.rejected) >= len(expected_rejections)
                    and len(learner.refused[topics.TRANSITIONS]) >= len(expected_auth_batches))

        wait_for(learner_done, 30, "the learner to handle every batch", poll_s=0)
        check_alive()
        after = save_checkpoint()
        check_alive()
    finally:
        node.destroy_node()
        codes = {role: stop_node(process) for role, process in sorted(nodes.items(), key=lambda kv: kv[0] == "learner")}
        for tail in tails.values():
            tail.poll()
            tail.close()
    counts = {key: len(expected[key]) for key in LOCKSTEP}
    counts["batch"] = len(expected_auth_batches) + len(expected_rejections)
    print(f"refused per type {counts}; fuzz {fuzz_seconds:.1f} s (start-up {fuzz_started - started:.1f} s), "
          f"whole test {time.monotonic() - started:.1f} s")
    assert codes == {"env": 0, "actor": 0, "learner": 0}, codes

    # Every fuzz message to the env and the actor was refused with its reason, in order, and nothing else was.
    for key in LOCKSTEP:
        reasons = tails[NODE_OF[key]].refused[TOPIC[key]]
        assert len(reasons) == len(expected[key]) >= PER_TYPE, (key, len(reasons), len(expected[key]))
        wrong = [(i, want, got) for i, (want, got) in enumerate(zip(expected[key], reasons)) if want not in got]
        assert not wrong, f"{key}: refused for another reason than expected: {wrong[:5]}"

    # The learner: auth failures refused (in order), invalid batches rejected (each named by its sequence).
    learner = tails["learner"]
    auth_reasons = learner.refused[topics.TRANSITIONS]
    assert len(auth_reasons) == len(expected_auth_batches), (len(auth_reasons), len(expected_auth_batches))
    wrong = [(i, w, g) for i, (w, g) in enumerate(zip(expected_auth_batches, auth_reasons)) if w not in g]
    assert not wrong, f"transitions: refused for another reason than expected: {wrong[:5]}"
    assert set(learner.rejected) == set(expected_rejections), set(learner.rejected) ^ set(expected_rejections)
    wrong = {k: (r, learner.rejected[k]) for k, r in expected_rejections.items()
             if len(learner.rejected[k]) != 1 or r not in learner.rejected[k][0]}
    assert not wrong, f"transitions: rejected for another reason than expected: {list(wrong.items())[:5]}"
    assert len(auth_reasons) + len(expected_rejections) >= PER_TYPE
    assert not any(a.rejected for a in fuzz_acks), "a valid batch was rejected"

    # The valid transitions interleaved with the fuzz: all in the buffer, exactly once.
    online = after["buffers"]["online"]["sequences"]
    kept = np.sort(online[online >= FUZZ_BASE])
    assert kept.tolist() == list(range(FUZZ_BASE, FUZZ_BASE + VALID_BATCHES * VALID_ROWS))
    senders = after["counters"]["sender_env_steps"]
    assert senders[FUZZ_ACTOR] == {fuzz_incarnation: VALID_BATCHES * VALID_ROWS}
    assert EVIL_ACTOR not in senders

    # The real actor kept training through the fuzz: one process, more transitions, the genuine weights only.
    assert list(senders["actor0"]) == [actor_incarnation] == list(before["actor0"])
    assert senders["actor0"][actor_incarnation] >= before["actor0"][actor_incarnation] + 100, (before, senders)
    summary = yaml.safe_load((run_dir / "actor_summary.yaml").read_text())
    assert summary["policy_version"] == genuine_weights.version
    assert summary["weights_rejected"] == fuzz.weights_decode_stage
    assert not summary["finished"]
    assert not (run_dir / "PWNED").exists(), "a weights payload ran code in the actor"
