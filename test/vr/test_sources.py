import json

import pytest

from helpers.vr_frames import frame, hand
from kuavo_vr_teleop.controller import ControllerFrame
from kuavo_vr_teleop.sources import (
    OpenXRSource,
    OpenXRUnavailable,
    Recorder,
    ReplaySource,
    ScriptedSource,
    read_recording,
)
from kuavo_vr_teleop.supervisor import Logs, SourceSupervisor


class FakeClock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def recorded_frames():
    # Irregular timing on purpose, and the source's own clock starting far from zero.
    times = [5.0, 5.02, 5.05, 5.30, 5.31]
    return [frame(t, hand((0.01 * i, 1.0, -0.1), squeeze=1.0, trigger=0.1 * i), hand(primary=i == 2))
            for i, t in enumerate(times)]


def write_recording(tmp_path, source: str = "scripted"):
    path = tmp_path / "rec.jsonl"
    with Recorder(path, source=source) as rec:
        for f in recorded_frames():
            rec.write(f)
    return path


def test_frame_dict_round_trip():
    f = recorded_frames()[2]
    assert ControllerFrame.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_record_then_replay_reproduces_frames_and_relative_timing(tmp_path):
    path = write_recording(tmp_path)
    frames = recorded_frames()
    header, loaded = read_recording(path)
    assert header["source"] == "scripted" and header["version"] == 1
    assert loaded == frames

    clock = FakeClock(1000.0)
    replay = ReplaySource(path, clock=clock)
    got = []  # (clock time when returned, frame)
    for _ in range(60):  # 10 ms polls over 0.6 s
        f = replay.poll()
        if f is not None:
            got.append((clock.t, f))
        clock.t += 0.01
    assert replay.finished and replay.poll() is None
    assert [f.right for _, f in got] == [f.right for f in frames]
    assert [f.left for _, f in got] == [f.left for f in frames]
    offsets = [f.time_s - frames[0].time_s for f in frames]
    # Re-stamped onto the replay clock with the same offsets...
    assert [f.time_s - 1000.0 for _, f in got] == pytest.approx(offsets)
    # ...and each frame returned at the first poll at or after its offset (10 ms polls).
    for (when, _), offset in zip(got, offsets):
        assert offset - 1e-9 <= when - 1000.0 < offset + 0.01 + 1e-9


def test_replay_skips_to_newest_due_frame_when_polled_slowly(tmp_path):
    path = write_recording(tmp_path)
    clock = FakeClock(0.0)
    replay = ReplaySource(path, clock=clock)
    assert replay.poll().right == recorded_frames()[0].right
    clock.t = 0.2  # frames at offsets 0.02 and 0.05 are due: only the newest is returned
    assert replay.poll().right == recorded_frames()[2].right
    assert replay.poll() is None


def test_replay_loop_keeps_time_increasing(tmp_path):
    path = write_recording(tmp_path)
    clock = FakeClock(0.0)
    replay = ReplaySource(path, clock=clock, loop=True)
    times = []
    for _ in range(200):
        f = replay.poll()
        if f is not None:
            times.append(f.time_s)
        clock.t += 0.01
    assert len(times) > 10 and all(b > a for a, b in zip(times, times[1:]))


def test_bad_recording_is_rejected(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(ValueError):
        ReplaySource(path)


def test_scripted_source_list_and_function():
    frames = recorded_frames()
    src = ScriptedSource(frames)
    assert [src.poll() for _ in range(len(frames))] == frames and src.poll() is None
    clock = FakeClock(3.0)
    fn = ScriptedSource(lambda t: frame(t), clock=clock)
    assert fn.poll().time_s == 0.0
    clock.t = 3.5
    assert fn.poll().time_s == 0.5


def test_openxr_without_runtime_raises_helpful_error(monkeypatch):
    monkeypatch.delenv("XR_RUNTIME_JSON", raising=False)
    with pytest.raises(OpenXRUnavailable) as err:
        OpenXRSource()
    text = str(err.value)
    assert "No OpenXR runtime was found" in text
    for hint in ("XR_RUNTIME_JSON", "WiVRn", "ALVR", "SteamVR", "Monado"):
        assert hint in text


def test_supervisor_retries_on_period_and_logs_explanation_once():
    warnings, debug = [], []
    calls = []

    def factory():
        calls.append(1)
        raise OpenXRUnavailable("No OpenXR runtime was found. Install WiVRn.")

    sup = SourceSupervisor(factory, retry_period_s=5.0, logs=Logs(warn=warnings.append, info=warnings.append,
                                                                  debug=debug.append))
    t = 0.0
    while t < 30.0:
        assert sup.poll(t) is None
        t += 0.02
    assert len(calls) == 6  # t = 0, 5, 10, 15, 20, 25
    assert len(warnings) == 1 and "No OpenXR runtime was found" in warnings[0]
    assert len(debug) == 5


def test_supervisor_opens_records_and_reopens_lost_source(tmp_path):
    class Flaky:
        name = "flaky"

        def __init__(self):
            self.alive = True
            self.n = 0

        def poll(self):
            self.n += 1
            return frame(float(self.n))

        def close(self):
            self.alive = False

    made = []

    def factory():
        made.append(Flaky())
        return made[-1]

    rec = Recorder(tmp_path / "r.jsonl", "flaky")
    sup = SourceSupervisor(factory, retry_period_s=1.0, logs=Logs(warn=lambda m: None, info=lambda m: None),
                           recorder=rec)
    assert sup.poll(0.0) is not None and sup.poll(0.1) is not None
    made[0].alive = False  # runtime went away
    assert sup.poll(0.2) is None and sup.poll(0.5) is None
    assert sup.poll(1.3) is not None and len(made) == 2
    sup.close()
    assert len(read_recording(tmp_path / "r.jsonl")[1]) == 3


def test_supervisor_survives_a_source_that_raises_anything():
    """A bug in a source (opening, polling or closing) never stops the node: it is logged and retried."""
    warnings = []

    class Buggy:
        name = "buggy"

        def poll(self):
            raise TypeError("unsupported operand")

        def close(self):
            raise RuntimeError("teardown failed")

    attempts = []

    def factory():
        attempts.append(1)
        if len(attempts) == 1:
            raise TypeError("bad version arithmetic")
        return Buggy()

    sup = SourceSupervisor(factory, retry_period_s=1.0, logs=Logs(warn=warnings.append, info=lambda m: None))
    assert sup.poll(0.0) is None and not sup.connected
    assert warnings == ["input source failed to open (TypeError: bad version arithmetic) (retrying every 1 s)"]
    assert sup.poll(1.0) is None and not sup.connected  # opened, then its poll raised: lost at once
    assert any("'buggy' failed: TypeError" in w for w in warnings)
    assert any("closing input source 'buggy' failed" in w for w in warnings)
    assert sup.poll(2.0) is None and len(attempts) == 3  # and reopened on the period
