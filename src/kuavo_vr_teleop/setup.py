from setuptools import setup

package_name = "kuavo_vr_teleop"

setup(
    name=package_name,
    version="0.1.0",
    packages=[package_name],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    # numpy is needed by the pure core; pyopenxr only for the headset source (imported lazily).
    install_requires=["setuptools", "numpy"],
    extras_require={"openxr": ["pyopenxr"]},
    zip_safe=True,
    maintainer="kuavo_rl developers",
    maintainer_email="kuavo-rl@example.com",
    description="VR teleoperation (OpenXR) for kuavo_rl human-in-the-loop RL.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "vr_teleop_node = kuavo_vr_teleop.node:main",
        ],
    },
)
