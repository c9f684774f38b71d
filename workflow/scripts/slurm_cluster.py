"""A private single-node Slurm cluster in one directory, for tests and for trying the Slurm profile.

Everything lives under the given directory: ``slurm.conf``, a fresh munge key, the munge socket, state,
spool, logs and pid files. Daemons listen on free ports of 127.0.0.1 only (the node address and the
controller address are both 127.0.0.1). Nothing is installed: Debian's ``slurmctld slurmd slurm-client
munge`` must already be present (``scripts/install-system-deps.sh``); ``missing_binaries()`` says which are
not. Needs root (``SlurmUser=root``: a private munge key and daemons run as the invoking user).

Library use::

    with slurm_cluster.start(tmpdir) as cluster:        # waits until the node is idle
        subprocess.run(["sbatch", "--wrap", "true"], env=cluster.env)
    # every daemon started here has been stopped, by PID

Command line (manual use; prints the ``SLURM_CONF`` and ``PATH`` to export)::

    python workflow/scripts/slurm_cluster.py start /tmp/rlmu-slurm
    python workflow/scripts/slurm_cluster.py stop /tmp/rlmu-slurm

Status polling: there is no accounting database, so ``sacct`` cannot answer; Snakemake's Slurm executor
must poll with ``squeue`` (``slurm-status-command: squeue``), which it only honours when ``MinJobAge`` (how
long a finished job stays visible to ``squeue``) is at least 3x ``slurm-init-seconds-before-status-checks``.
``MIN_JOB_AGE_S`` is set far above that.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER_NAME = "rlmu"
PARTITION = "debug"
NODE_NAME = "rlmu-node"
MIN_JOB_AGE_S = 300  # finished jobs stay visible to squeue this long (>= 3x the profile's init seconds)
REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scancel", "scontrol")
STATE_FILE = "cluster.json"  # PIDs and paths of a running cluster (read by ``stop``)


class ClusterError(RuntimeError):
    """The cluster could not be started; the message names the daemon and its log file."""


def missing_binaries() -> list[str]:
    """Names of the Slurm/munge programs not found on PATH (or in /usr/sbin)."""
    return [b for b in REQUIRED_BINARIES if _which(b) is None]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> tuple[int, int]:
    """(CPUs, RealMemory in MiB) of this host, as slurmd itself will measure them.

    slurmd drains a node whose configured memory exceeds what it measures, so the values come from
    ``slurmd -C`` when it answers, else from os.cpu_count() and /proc/meminfo.
    """
    cpus, mem = os.cpu_count() or 1, None
    slurmd = _which("slurmd")
    if slurmd:
        out = subprocess.run([slurmd, "-C"], capture_output=True, text=True, timeout=30).stdout
        fields = dict(tok.split("=", 1) for tok in out.split() if "=" in tok)
        cpus = int(fields.get("CPUs", cpus))
        mem = int(fields["RealMemory"]) if "RealMemory" in fields else None
    if mem is None:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
        mem = kib // 1024
    return cpus, mem


def write_config(root: Path, cpus: int, mem_mb: int, ctld_port: int, slurmd_port: int) -> Path:
    """Write ``slurm.conf`` for one node (this host) and one partition; return its path."""
    d = {name: root / name for name in ("state", "spool", "log", "run", "munge")}
    for p in d.values():
        p.mkdir(parents=True, exist_ok=True)
    conf = f"""\
# Private single-node test cluster (workflow/scripts/slurm_cluster.py). 127.0.0.1 only.
ClusterName={CLUSTER_NAME}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d["munge"] / "munge.socket"}
StateSaveLocation={d["state"]}
SlurmdSpoolDir={d["spool"]}
SlurmctldPidFile={d["run"] / "slurmctld.pid"}
SlurmdPidFile={d["run"] / "slurmd.pid"}
SlurmctldLogFile={d["log"] / "slurmctld.log"}
SlurmdLogFile={d["log"] / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups inside a container: track processes by parent PID, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# Bind every daemon and client socket to 127.0.0.1 (the resolved controller/node address), not 0.0.0.0.
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
# No accounting database: sacct cannot answer, clients poll squeue; completions go to a text file.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={d["log"] / "jobcomp.txt"}
MinJobAge={MIN_JOB_AGE_S}
ReturnToService=2
JobRequeue=1
KillWait=5
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
NodeName={NODE_NAME} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE State=UP
"""
    path = root / "slurm.conf"
    path.write_text(conf)
    _write_srun_wrapper(root / "bin", path)
    return path


def _write_srun_wrapper(bin_dir: Path, conf: Path) -> None:
    """An ``srun`` that always uses this cluster's config.

    Snakemake's Slurm job step runs each job through ``srun`` after removing every ``SLURM_*`` variable
    from the environment, ``SLURM_CONF`` included; the real srun would then look for
    /etc/slurm/slurm.conf. PATH survives, so a wrapper first on PATH restores the private config.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    real = _which("srun") or "/usr/bin/srun"
    wrapper = bin_dir / "srun"
    wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={shlex.quote(str(conf))} exec {shlex.quote(real)} "$@"\n')
    wrapper.chmod(0o755)


@dataclass
class Cluster:
    """A running private cluster. ``env`` is os.environ plus ``SLURM_CONF`` for sbatch/squeue/..."""

    root: Path
    conf: Path
    pids: dict[str, int] = field(default_factory=dict)  # daemon name -> PID, in start order
    partition: str = PARTITION
    node: str = NODE_NAME

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def env(self) -> dict[str, str]:
        path = f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster; returns the completed process (text)."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    def save(self) -> None:
        state = {"conf": str(self.conf), "pids": self.pids}
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=1))

    @classmethod
    def load(cls, root: Path) -> Cluster:
        state = json.loads((Path(root) / STATE_FILE).read_text())
        return cls(root=Path(root), conf=Path(state["conf"]), pids={k: int(v) for k, v in state["pids"].items()})

    def stop(self, timeout: float = 15) -> None:
        """Cancel this cluster's jobs, then stop every daemon started here (by PID, newest first)."""
        if self.pids.get("slurmctld") and _alive(self.pids["slurmctld"], "slurmctld"):
            # Jobs first, so slurmd reaps their slurmstepd processes before it goes away.
            self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                out = self.run("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING", check=False)
                if out.returncode != 0 or not out.stdout.strip():
                    break
                time.sleep(0.5)
        for name in reversed(list(self.pids)):
            _terminate(self.pids[name], name, timeout)
        self.pids.clear()
        state_file = self.root / STATE_FILE
        if state_file.exists():
            state_file.unlink()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _alive(pid: int, name: str) -> bool:
    """True if PID is running and is the named program (guards against a recycled PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return os.path.basename(cmdline) == name


def _terminate(pid: int, name: str, timeout: float) -> None:
    if not _alive(pid, name):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid, name):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not _alive(pid, name):
            return
        time.sleep(0.1)


def _reap(pid: int) -> None:
    # Daemons started by this process are its children: collect them so they do not linger as zombies.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _spawn(cmd: list[str], log: Path) -> int:
    # A new session: a Ctrl-C in the starting terminal (or pytest's) does not reach the daemons;
    # they are stopped explicitly by PID.
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    # Until the child has exec'd, /proc shows the forking Python: wait, so _alive() checks the daemon.
    name = os.path.basename(cmd[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None and not _alive(proc.pid, name):
        time.sleep(0.02)
    return proc.pid


def _wait_for(check, timeout: float, what: str, cluster: Cluster, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for name, pid in cluster.pids.items():
            if not _alive(pid, name):
                cluster.stop()
                raise ClusterError(f"{name} exited while waiting for {what}; see {log.parent}/{name}*.log")
        time.sleep(0.25)
    cluster.stop()
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}; see {log}")


def start(root: str | os.PathLike, timeout: float = 60) -> Cluster:
    """Start munged, slurmctld and slurmd for a private cluster under ``root``; wait for an idle node.

    Raises ClusterError (naming the missing program or the log to read) if anything fails; daemons
    already started are stopped before it is raised.
    """
    missing = missing_binaries()
    if missing:
        raise ClusterError(f"missing programs: {', '.join(missing)} (install Debian's slurmctld slurmd "
                           "slurm-client munge, e.g. scripts/install-system-deps.sh)")
    if os.geteuid() != 0:
        raise ClusterError("the private cluster runs its daemons as SlurmUser=root: run as root")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cpus, mem_mb = _node_hardware()
    conf = write_config(root, cpus, mem_mb, _free_port(), _free_port())
    cluster = Cluster(root=root, conf=conf)
    logs, munge_dir = root / "log", root / "munge"

    key = munge_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    socket_path = munge_dir / "munge.socket"
    cluster.pids["munged"] = _spawn(
        [_which("munged"), "--foreground", "--force", f"--socket={socket_path}", f"--key-file={key}",
         f"--pid-file={munge_dir / 'munged.pid'}", f"--seed-file={munge_dir / 'munged.seed'}",
         f"--log-file={logs / 'munged.log'}"],
        logs / "munged.out",
    )
    cluster.save()
    _wait_for(socket_path.exists, timeout, "the munge socket", cluster, logs / "munged.log")

    cluster.pids["slurmctld"] = _spawn([_which("slurmctld"), "-D", "-i", "-f", str(conf)], logs / "slurmctld.out")
    cluster.save()
    _wait_for(lambda: cluster.run("scontrol", "ping", check=False).stdout.count("UP") > 0, timeout,
              "slurmctld to answer", cluster, logs / "slurmctld.log")

    cluster.pids["slurmd"] = _spawn([_which("slurmd"), "-D", "-f", str(conf), "-N", NODE_NAME], logs / "slurmd.out")
    cluster.save()
    _wait_for(lambda: cluster.node_state() == "idle", timeout, f"node {NODE_NAME} to be idle", cluster,
              logs / "slurmd.log")
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start or stop a private single-node Slurm cluster.")
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("dir", type=Path, help="directory holding the cluster's config, state and logs")
    args = parser.parse_args(argv)
    if args.action == "start":
        try:
            cluster = start(args.dir)
        except ClusterError as exc:
            print(f"slurm_cluster: error: {exc}", file=sys.stderr)
            return 1
        print(f"started {', '.join(f'{n} (pid {p})' for n, p in cluster.pids.items())}")
        print(f"export SLURM_CONF={cluster.conf} PATH={cluster.bin_dir}:$PATH")
        return 0
    if not (args.dir / STATE_FILE).exists():
        print(f"slurm_cluster: error: no running cluster recorded in {args.dir / STATE_FILE}", file=sys.stderr)
        return 1
    cluster = Cluster.load(args.dir)
    if args.action == "status":
        for name, pid in cluster.pids.items():
            print(f"{name} pid {pid}: {'running' if _alive(pid, name) else 'not running'}")
        print(f"node {cluster.node}: {cluster.node_state() or 'unreachable'}")
        return 0
    cluster.stop()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
