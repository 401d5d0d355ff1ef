"""kuavo_rl: human-in-the-loop RL for the Leju Kuavo (functional core + thin ROS 2 nodes)."""
