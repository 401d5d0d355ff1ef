"""Message signing without DDS: what a stranger on the domain can and cannot get past a node."""
import os
import stat

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

import kuavo_msgs.msg as msgs
from helpers.big_batch import make_big_batch
from kuavo_rl.auth import AuthError, Signer, Verifier, key_path, load_or_create_key, run_token
from kuavo_rl.codec import batch_to_msg

KEY = bytes(range(32))


def over_the_wire(msg):
    """What a subscriber receives: the message serialised and rebuilt (float32 rounding included)."""
    return deserialize_message(serialize_message(msg), type(msg))


def takeover(action=(0.1, 0.2, 0.3)):
    return msgs.Intervention(active=True, action=list(action), source="openxr")


def test_a_signed_message_is_accepted_once_and_replays_are_refused():
    signer, verifier = Signer(KEY, "vr"), Verifier(KEY)
    first, second = over_the_wire(signer.sign(takeover())), over_the_wire(signer.sign(takeover()))
    verifier.verify(first)
    verifier.verify(second)
    with pytest.raises(AuthError, match="replayed"):
        verifier.verify(first)  # recorded and sent again later
    Verifier(KEY).verify(first)  # counters are per receiver: another subscription has not seen it


def test_unsigned_foreign_and_altered_messages_are_refused():
    verifier = Verifier(KEY)
    with pytest.raises(AuthError, match="not from this run"):
        verifier.verify(takeover())
    other_run = Signer(os.urandom(32), "vr").sign(takeover())
    with pytest.raises(AuthError, match="not from this run"):
        verifier.verify(other_run)
    forged = Signer(KEY, "vr").sign(takeover())
    forged.action = [0.9, 0.2, 0.3]  # a man in the middle changes the action
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(forged)
    stolen_token = takeover()
    stolen_token.auth.run_token, stolen_token.auth.sender, stolen_token.auth.counter = run_token(KEY), "vr/x", 99
    stolen_token.auth.mac = "0" * 64  # the token is public; without the key the MAC cannot be made
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(stolen_token)


def test_the_signature_binds_the_message_type_and_survives_a_big_batch_on_the_wire():
    signer, verifier = Signer(KEY, "actor"), Verifier(KEY)
    batch = over_the_wire(signer.sign(batch_to_msg(msgs.TransitionBatch(), make_big_batch())))
    verifier.verify(batch)
    tampered = over_the_wire(signer.sign(batch_to_msg(msgs.TransitionBatch(), make_big_batch())))
    values = np.frombuffer(tampered.observations, np.float32).copy()
    values[12345] += 1.0
    tampered.observations = values.tolist()
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(tampered)
    ack = signer.sign(msgs.BatchAck(actor_id="a"))
    as_weights = msgs.PolicyWeights()
    as_weights.auth = ack.auth  # same auth fields, another message type
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(as_weights)


def test_run_key_file_is_created_owner_only_and_shared_by_the_run(tmp_path):
    path = key_path(tmp_path)
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key  # every node of the run reads the same key
    path.chmod(0o644)
    with pytest.raises(AuthError, match="readable by other users"):
        load_or_create_key(path)
    path.chmod(0o600)
    path.write_text("not hex")
    with pytest.raises(AuthError, match="not hex"):
        load_or_create_key(path)
    assert key_path(tmp_path, "/elsewhere/run.key").as_posix() == "/elsewhere/run.key"
