"""The node's settings: experiment config (`vr` section) -> mapping and teleop core, no ROS running."""

import numpy as np
import pytest

from kuavo_rl.config import ConfigError, load_config
from kuavo_vr_teleop.mapping import EndEffectorDeltaMapping, ToyAxesMapping
from kuavo_vr_teleop.node import core_from_config, mapping_from_config


def cfg(*overrides):
    return load_config(None, overrides, pipeline=True)


def test_mapping_defaults_to_the_envs_own():
    toy = mapping_from_config(cfg("env.action_dim=6"))
    assert isinstance(toy, ToyAxesMapping) and toy.action_dim == 6  # toy takes env.action_dim
    sim = mapping_from_config(cfg("env.name=pick_lift", "env.action_dim=4"))
    assert isinstance(sim, EndEffectorDeltaMapping) and sim.action_dim == 4


def test_explicit_mapping_and_scale():
    mapping = mapping_from_config(cfg("vr.mapping=ee_delta", "env.action_dim=4", "vr.metres_per_unit=0.2"))
    assert isinstance(mapping, EndEffectorDeltaMapping) and mapping.metres_per_unit == 0.2
    assert mapping_from_config(cfg("vr.mapping=ee_delta", "env.action_dim=4")).metres_per_unit == 0.05


def test_unknown_mapping_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"vr\.mapping: unknown mapping 'joystick' \(known: toy, ee_delta, kuavo_ee_delta, kuavo_arms\)"):
        mapping_from_config(cfg("vr.mapping=joystick"))


def test_mapping_size_must_match_the_env():
    with pytest.raises(ConfigError, match=r"vr\.mapping: mapping 'kuavo_arms' produces 16-dim actions, "
                                          r"but env pick_lift takes 4 \(env\.action_dim\)"):
        mapping_from_config(cfg("vr.mapping=kuavo_arms", "env.name=pick_lift", "env.action_dim=4"))
    with pytest.raises(ConfigError, match=r"'ee_delta' produces 4-dim actions, but env toy takes 14"):
        mapping_from_config(cfg("vr.mapping=ee_delta"))


def test_core_takes_the_vr_settings():
    core = core_from_config(cfg("vr.mapping=ee_delta", "env.action_dim=4", "vr.max_delta_per_step=0.25",
                                "vr.stale_timeout_s=0.1", "vr.estop_chord=left.x + right.b",
                                "vr.workspace_half_extent_m=0.2", "vr.deadman=left.squeeze"))
    assert core.config.estop_chord == ("left.x", "right.b")
    assert core.config.reset_chord == ("right.a", "right.b")
    assert core.config.deadman == "left.squeeze" and core.config.stale_timeout_s == 0.1
    assert core.config.workspace_high == (0.2, 0.2, 0.2)
    np.testing.assert_allclose(core.max_delta, 0.25)
    np.testing.assert_allclose(core_from_config(cfg()).max_delta, 0.2)  # 0 = 10% of the range [-1, 1]


@pytest.mark.parametrize("override, key", [
    ("vr.deadman=right.grip", "vr.deadman"),
    ("vr.deadman=' '", "vr.deadman"),
    ("vr.estop_chord=left.x+middle.y", "vr.estop_chord"),
    ("vr.estop_chord=+", "vr.estop_chord"),
    ("vr.reset_chord=right.a+right.c", "vr.reset_chord"),
])
def test_unknown_or_empty_bindings_are_refused(override, key):
    # They would otherwise fail on the first controller frame, or leave the e-stop without a chord.
    config = cfg(override)  # the schema accepts any string
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        core_from_config(config)
