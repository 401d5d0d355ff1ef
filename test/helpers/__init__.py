"""Code shared by the tests: core drivers (cores), pipeline runs (pipeline), message fixtures and
the DDS publisher process (msg_fixtures, ros_publish, big_batch)."""
