"""Derive the locked requirements for another Python from an existing lock (maintainers' tool).

    python3 scripts/lock_requirements.py /path/to/python3.10 [--base requirements/python-3.11.txt]

Every pin of the base lock that has a release for that Python is kept. A pin without one is
relaxed to whatever pip's resolver picks for that Python with every other pin in place, and dropped
when no release at all exists (it is then only needed by a newer release of something else). The
result, every package pip would install, is written to requirements/python-<X.Y>.txt. It also checks
that the ROS wheels and the no-deps packages have releases for that Python. Needs PyPI.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"
# pip's two ways of saying a requirement has no release for this Python
UNAVAILABLE = (re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)"),
               re.compile(r"Package '([A-Za-z0-9_.\-]+)' requires a different Python"))


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def dry_run(python: Path, requirements: list[str], report: Path, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(requirements) + "\n")
        listing.flush()
        return subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                               "--disable-pip-version-check", "--report", str(report), *extra, "-r", listing.name],
                              capture_output=True, text=True)


def resolve(python: Path, pins: list[str], report: Path) -> list[str]:
    """The base pins, relaxed one unavailable package at a time until pip resolves them."""
    while True:
        completed = dry_run(python, pins, report)
        if completed.returncode == 0:
            return pins
        missing = next(filter(None, (pattern.search(completed.stderr) for pattern in UNAVAILABLE)), None)
        if missing is None:
            sys.exit(f"pip could not resolve the requirements:\n{completed.stderr[-3000:]}")
        name = canonical(missing.group(1))
        pinned = [pin for pin in pins if canonical(pin.split("==")[0]) == name and "==" in pin]
        if pinned:
            print(f"  {pinned[0]}: no release for this Python; letting the resolver choose")
            pins = [pin.split("==")[0] if pin in pinned else pin for pin in pins]
        else:
            print(f"  {name}: no release at all for this Python; dropped")
            pins = [pin for pin in pins if canonical(pin) != name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", type=Path, help="the interpreter to lock for")
    parser.add_argument("--base", type=Path, default=REQUIREMENTS / "python-3.11.txt")
    args = parser.parse_args()
    version = subprocess.run([str(args.python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"locking for Python {version} from {args.base.name}")
    with tempfile.TemporaryDirectory() as scratch:
        venv = Path(scratch) / "venv"
        subprocess.run([str(args.python), "-m", "venv", str(venv)], check=True)
        python, report = venv / "bin" / "python", Path(scratch) / "report.json"
        resolve(python, read_pins(args.base), report)
        installs = json.loads(report.read_text())["install"]
        no_deps = read_pins(REQUIREMENTS / "ros-wheels.txt") + read_pins(REQUIREMENTS / "no-deps.txt")
        completed = dry_run(python, no_deps, report, "--no-deps")
        if completed.returncode != 0:
            sys.exit(f"the ROS wheels or no-deps packages have no release for Python {version}:\n"
                     f"{completed.stderr[-2000:]}")
    pins = sorted(((item["metadata"]["name"], item["metadata"]["version"]) for item in installs),
                  key=lambda pin: pin[0].lower())
    target = REQUIREMENTS / f"python-{version}.txt"
    target.write_text("".join(f"{name}=={release}\n" for name, release in pins))
    print(f"wrote {target} ({len(pins)} packages)")


if __name__ == "__main__":
    main()
