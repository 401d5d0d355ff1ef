"""Rewrite the build-machine include folders baked into the ROS 2 PyPI wheels' CMake files.

The wheels' exported ``<venv>/share/**/*.cmake`` name ``/opt/python/cp311-cp311/...`` (the
manylinux build image). CMake's generate step fails on folders that do not exist, so point them
at this venv's own Python include folder and numpy include folder. Idempotent.
"""
import pathlib
import re
import sys
import sysconfig

import numpy


def main(venv: str) -> int:
    share = pathlib.Path(venv) / "share"
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    foreign_numpy = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/_core/include")
    foreign_python = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
    rewritten = 0
    for path in share.rglob("*.cmake"):
        text = path.read_text(errors="surrogateescape")
        if "/opt/python/" not in text:
            continue
        new = foreign_numpy.sub(numpy_include, text)
        new = foreign_python.sub(python_include, new)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            rewritten += 1
    print(f"fix_ros_wheel_cmake: rewrote {rewritten} CMake files under {share}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
