"""Env steps per second with random actions (the env alone, no ROS, no learner).

    ./kuavo run python bench/bench_env_steps.py [toy|pick_lift] [steps]
"""
import sys
import time

from kuavo_rl.config import load_config
from kuavo_rl.envs import make_env
from kuavo_rl.launch_plan import default_config_path

name = sys.argv[1] if len(sys.argv) > 1 else "pick_lift"
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
env = make_env(load_config(default_config_path(name)).env, seed=0)
env.reset(seed=0)
started = time.perf_counter()
for _ in range(steps):
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    if terminated or truncated:
        env.reset()
elapsed = time.perf_counter() - started
print(f"{name}: {steps / elapsed:.0f} env steps/s ({1e3 * elapsed / steps:.2f} ms per step, {steps} steps)")
