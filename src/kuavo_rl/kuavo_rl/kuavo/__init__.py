"""The simulated Kuavo upper body (MuJoCo, no ROS) and the pieces the Kuavo task is built from."""
