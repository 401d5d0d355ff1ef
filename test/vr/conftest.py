"""Make src/kuavo_vr_teleop importable without installing it (pure tests need no ROS)."""

import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "src" / "kuavo_vr_teleop"
if str(PKG) not in sys.path:
    sys.path.insert(0, str(PKG))
