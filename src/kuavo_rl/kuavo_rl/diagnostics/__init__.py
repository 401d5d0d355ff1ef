"""Diagnostics: the seed's experiments as configuration (sweeps, reports with verdicts, PPO
baseline, and the in-process vs ROS-pipeline agreement check)."""
