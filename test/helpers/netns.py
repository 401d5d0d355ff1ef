"""Two machines on one link, for real: two Linux network namespaces ("robot" and "workstation")
joined by a veth pair with addresses of their own. DDS traffic between them crosses that link and
nothing leaves this machine. The link can be cut (`ip link set ... down`) and made lossy (random
drop rules with nftables in the robot's namespace, both directions; `tc netem` is missing from
this kernel). Each host gets a directory that stands in for its checkout (scripts/ and config/ are
links to this one), so the README's two-machine commands run there as written.

Needs root (CI has it); `unavailable()` says why not. Namespaces are named kr2m<pid><r|w>; ones
left by a killed run are removed at the next start."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from helpers.pipeline import wait_for

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PREFIX = "kr2m"
RUN = "runs/two-machines"  # the README's run directory, on each host
NFT_TABLE = "kuavo_loss"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=20)


def unavailable() -> str | None:
    """Why two namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def ensure_nft() -> str:
    """The nft command; installed with apt-get when missing (root, Debian/Ubuntu)."""
    if (nft := shutil.which("nft")) is None and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "nftables"], capture_output=True,
                       timeout=300, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        nft = shutil.which("nft")
    if nft is None:
        raise RuntimeError("nft (nftables) is missing and could not be installed: apt-get install nftables")
    return nft


def listed_namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines() if line.strip()}


def remove_stale_namespaces() -> None:
    """Namespaces of an earlier test process that was killed before it could clean up."""
    for name in listed_namespaces():
        match = re.fullmatch(rf"{PREFIX}(\d+)[rw]", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            delete_namespace(name)


def delete_namespace(name: str) -> None:
    """Kill what still runs in it (e.g. a node in its own session that outlived its group), delete it."""
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        _kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)


@dataclass
class Host:
    name: str  # robot | workstation
    netns: str
    device: str
    address: str
    directory: Path  # stands in for the checkout on that machine
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(self, script: str, log_path: Path, env: dict | None = None) -> subprocess.Popen:
        """A bash script in this host's namespace and directory, in its own process group."""
        with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(["ip", "netns", "exec", self.netns, "bash", "-c", script],
                                       cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, **(env or {})}, start_new_session=True)
        self.processes.append(process)
        return process

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _ip("-n", self.netns, *args, check=check)

    def bring_up(self) -> None:
        """The link up with its multicast route (DDS discovery); the route goes when the link goes down."""
        self.ip("link", "set", self.device, "up")
        self.ip("route", "replace", "224.0.0.0/4", "dev", self.device)


class TwoHosts:
    """The robot PC and the training workstation, joined by one veth link."""

    def __init__(self, root: Path):
        remove_stale_namespaces()
        tag = f"{PREFIX}{os.getpid()}"
        self.robot = Host("robot", f"{tag}r", f"{tag}r0", "10.231.7.1", root / "robot")
        self.workstation = Host("workstation", f"{tag}w", f"{tag}w0", "10.231.7.2", root / "workstation")
        self.hosts = (self.robot, self.workstation)
        try:
            for host in self.hosts:
                _ip("netns", "add", host.netns)
            _ip("link", "add", self.robot.device, "type", "veth", "peer", "name", self.workstation.device)
            for host in self.hosts:
                _ip("link", "set", host.device, "netns", host.netns)
                host.ip("link", "set", "lo", "up")
                host.ip("addr", "add", f"{host.address}/24", "dev", host.device)
                host.bring_up()
                self._make_checkout(host.directory)
        except Exception:
            self.close()
            raise
        self.loss_percent = 0

    @staticmethod
    def _make_checkout(directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("scripts", "config"):
            (directory / name).symlink_to(REPO / name)

    # ---- link faults ----------------------------------------------------------------------------
    def cut(self) -> None:
        self.robot.ip("link", "set", self.robot.device, "down")

    def restore(self) -> None:
        for host in self.hosts:
            host.bring_up()

    def drop(self, percent: int) -> None:
        """Drop `percent`% of the packets entering and, separately, leaving the robot's namespace."""
        nft = ensure_nft()
        self.clear_drop()
        run = lambda *args: subprocess.run(["ip", "netns", "exec", self.robot.netns, nft, *args],  # noqa: E731
                                           check=True, capture_output=True, text=True, timeout=20)
        run("add", "table", "inet", NFT_TABLE)
        for chain, hook, interface in (("in", "input", "iifname"), ("out", "output", "oifname")):
            run("add", "chain", "inet", NFT_TABLE, chain, f"{{ type filter hook {hook} priority 0; }}")
            run("add", "rule", "inet", NFT_TABLE, chain, interface, self.robot.device,
                "numgen", "random", "mod", "100", "<", str(percent), "drop")
        self.loss_percent = percent

    def clear_drop(self) -> None:
        if self.loss_percent:
            subprocess.run(["ip", "netns", "exec", self.robot.netns, ensure_nft(), "delete", "table", "inet",
                            NFT_TABLE], capture_output=True, timeout=20)
        self.loss_percent = 0

    # ---- teardown -------------------------------------------------------------------------------
    def close(self, grace_s: float = 30.0) -> None:
        """Stop every process started on either host (SIGINT, then SIGKILL after `grace_s`: time for the
        nodes to save and close), delete the namespaces."""
        processes = [p for host in self.hosts for p in host.processes if p.poll() is None]
        for process in processes:
            signal_group(process, signal.SIGINT)
        deadline = time.monotonic() + grace_s
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                process.wait()
        for host in self.hosts:
            delete_namespace(host.netns)


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def signal_group(process: subprocess.Popen, signum: int = signal.SIGINT) -> None:
    """Signal the process group a Host.run started (SIGINT: what Ctrl-C in its terminal would send)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


# ---- the README's two-machine commands -----------------------------------------------------------
def readme_commands(side: str) -> list[str]:
    """The shell lines of the README block marked `<!-- two-machines: <side> -->` (comments dropped)."""
    text = README.read_text()
    match = re.search(rf"<!-- two-machines: {side} -->\s*```bash\n(.*?)```", text, re.S)
    if match is None:
        raise AssertionError(f"README.md has no code block marked <!-- two-machines: {side} -->")
    return [line for line in match.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def side_script(side: str, workstation_dir: Path, train_args: list[str]) -> str:
    """The README's commands for one side, as written, except: the key copy `scp workstation:kuavo_rl/`
    reads the workstation's directory (there is no ssh between namespaces), and `train_args` (the
    test's own --set overrides) are appended to the `kuavo-rl train` line."""
    lines = []
    for line in readme_commands(side):
        line = line.replace("scp workstation:kuavo_rl/", f"cp {workstation_dir}/")
        if line.startswith("kuavo-rl train"):
            line = " ".join([line, *train_args])
        lines.append(line)
    return "set -e\n" + "\n".join(lines) + "\n"


def readme_domain_id() -> int:
    """The ROS_DOMAIN_ID the README's two-machine commands export."""
    exports = " ".join(readme_commands("workstation"))
    match = re.search(r"ROS_DOMAIN_ID=(\d+)", exports)
    if match is None:
        raise AssertionError("the README's workstation commands export no ROS_DOMAIN_ID")
    return int(match.group(1))


def probe_script(arguments: str, discovery: str = "SUBNET") -> str:
    """helpers.dds_probe on a host, on the README's domain."""
    return (f"source scripts/env.sh\nexport ROS_DOMAIN_ID={readme_domain_id()} "
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={discovery}\n"
            f"export PYTHONPATH={REPO / 'test'}:$PYTHONPATH\nexec python -m helpers.dds_probe {arguments}\n")


def _set(overrides: list[str]) -> list[str]:
    return [part for override in overrides for part in ("--set", override)]


class TwoMachineRun:
    """Both sides of one two-machine run, started as the README says: workstation first, then the
    robot PC once the run key exists to copy."""

    def __init__(self, hosts: TwoHosts, overrides: list[str], status_probe: bool = False):
        self.hosts = hosts
        self.logs = hosts.robot.directory.parent
        ws, robot = hosts.workstation, hosts.robot
        self.probes = []
        if status_probe:  # what each machine's operator would see on its own side of the link
            self.probes = [host.run(probe_script(f"status {self.status_file(host.name)}"),
                                    self.logs / f"probe-{host.name}.log") for host in (ws, robot)]
        self.learner_side = ws.run(side_script("workstation", ws.directory, _set(overrides)),
                                   self.logs / "workstation.log")
        key = ws.directory / RUN / "run.key"
        wait_for(lambda: key.exists() or self.learner_side.poll() is not None, 120, "the learner side's run key")
        self.robot_side = robot.run(side_script("robot", ws.directory, _set(overrides)), self.logs / "robot.log")

    def output(self, side: str) -> str:
        return (self.logs / f"{side}.log").read_text()

    def wait(self, timeout_s: float) -> None:
        """Both sides end by themselves: the robot side when its actor is done, the learner side when
        it has heard that."""
        for side, process in (("robot", self.robot_side), ("workstation", self.learner_side)):
            wait_for(lambda: process.poll() is not None, timeout_s, f"the {side} side to finish")
            assert process.returncode == 0, self.output(side)[-4000:]
        for probe in self.probes:
            signal_group(probe)
            probe.wait(timeout=20)

    def status_file(self, host: str) -> Path:
        return self.logs / f"status-{host}.jsonl"

    def statuses(self, kind: str) -> list[dict]:
        """The learner's statuses as seen on the workstation, the actor's as seen on the robot PC."""
        path = self.status_file("workstation" if kind == "learner" else "robot")
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        return [r for r in (json.loads(line) for line in lines if line.endswith("}")) if r["kind"] == kind]

    def learner_dir(self) -> Path:
        return self.hosts.workstation.directory / RUN

    def actor_summary(self) -> dict:
        return yaml.safe_load((self.hosts.robot.directory / RUN / "actor_summary.yaml").read_text())


def _between(statuses: list[dict], start: float, end: float) -> list[dict]:
    return [s for s in statuses if start <= s["time"] <= end]


def rate_between(statuses: list[dict], start: float, end: float) -> float:
    """Training transitions per second the learner received between two monotonic times."""
    inside = _between(statuses, start, end)
    if len(inside) < 2:
        return 0.0
    return (inside[-1]["env_steps"] - inside[0]["env_steps"]) / (inside[-1]["time"] - inside[0]["time"])


def longest_stall_s(statuses: list[dict], start: float, end: float) -> float:
    """The longest time between two statuses in which the learner received no new transition (a lost
    sample holds back every later one on a reliable topic until it is repaired)."""
    inside = _between(statuses, start, end)
    if len(inside) < 2:
        return end - start
    longest, since = 0.0, inside[0]
    for status in inside[1:]:
        if status["env_steps"] != since["env_steps"]:
            longest, since = max(longest, status["time"] - since["time"]), status
    return max(longest, inside[-1]["time"] - since["time"])


def versions_between(statuses: list[dict], start: float, end: float) -> set[int]:
    return {s["policy_version"] for s in _between(statuses, start, end)}


def loss_phases(hosts: TwoHosts, percents: list[int], seconds: float) -> dict[str, tuple[float, float]]:
    """One phase per loss percentage (0 = a clean link), `seconds` each; the link is clean afterwards.
    Returns each phase's name ("clean", "5% loss", ...) and its monotonic start and end."""
    phases = {}
    for percent in percents:
        hosts.drop(percent) if percent else hosts.clear_drop()
        start = time.monotonic()
        time.sleep(seconds)
        phases[f"{percent}% loss" if percent else "clean"] = (start, time.monotonic())
    hosts.clear_drop()
    return phases
