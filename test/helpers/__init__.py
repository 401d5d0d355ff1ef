"""Code shared by the tests: core drivers (cores), pipeline runs (pipeline), controller frames for
the VR tests (vr_frames), message fixtures and the DDS publisher process (msg_fixtures, ros_publish,
big_batch)."""
