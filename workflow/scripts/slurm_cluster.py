"""A private single-node Slurm cluster in one directory, for tests and for trying the Slurm profile.

Everything lives under the given directory: ``slurm.conf``, a fresh munge key, the munge socket, state,
spool, logs and pid files. Nothing is installed: Debian's ``slurmctld slurmd slurm-client munge`` must
already be present (``scripts/install-system-deps.sh``); ``missing_binaries()`` says which are not. Needs
root (``SlurmUser=root``: a private munge key and daemons run as the invoking user; and the UTS namespace
below).

Loopback only. slurmctld binds to its configured address (``SlurmctldHost=localhost(127.0.0.1)`` with
``NoCtldInAddrAny``) and slurmd to its node address (``NodeAddr=127.0.0.1`` with ``NoInAddrAny``). Other
Slurm programs that listen, slurmstepd and the ``srun`` of a job, bind to the address their host name
resolves to under ``NoInAddrAny``, and that need not be loopback. So every daemon runs in a UTS namespace
of its own whose host name is ``localhost`` (``unshare --uts``): the daemons and everything they start
(job steps, their ``srun``) resolve their own name to 127.0.0.1 whatever this machine is called.
``listening_sockets()`` lists what the cluster's processes listen on (from ``/proc``, no ``ss`` needed).

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CLUSTER_NAME = "rlmu"
PARTITION = "debug"
NODE_NAME = "rlmu-node"
MIN_JOB_AGE_S = 300  # finished jobs stay visible to squeue this long (>= 3x the profile's init seconds)
REQUIRED_BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scancel",
    "scontrol",
    "unshare",
    "hostname",
)
PLACEHOLDER_GPUS = 1  # gres gpu on /dev/null: GPU requests can be scheduled and checked, not used
HOST_NAME = "localhost"  # the host name inside the daemons' UTS namespaces: resolves to 127.0.0.1
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
# Bind to the configured controller and node addresses (127.0.0.1), and elsewhere to the address of the
# host name (localhost inside the daemons' UTS namespace), never to 0.0.0.0.
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
# One placeholder GPU (gres.conf: File=/dev/null), so jobs that ask for a GPU (sbatch --gpus=1) are
# scheduled and see SLURM_GPUS_ON_NODE=1; no program can compute on it.
GresTypes=gpu
NodeName={NODE_NAME} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{PLACEHOLDER_GPUS} State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE_NAME} Default=YES MaxTime=INFINITE State=UP
"""
    path = root / "slurm.conf"
    path.write_text(conf)
    # slurmd reads gres.conf from the directory of its slurm.conf.
    (root / "gres.conf").write_text(
        f"NodeName={NODE_NAME} Name=gpu File=/dev/null Count={PLACEHOLDER_GPUS}\n"
    )
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
        return subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def processes(self) -> dict[int, str]:
        """PID -> program of every running process of this cluster (daemons, job steps, their srun)."""
        return namespace_processes(pid for name, pid in self.pids.items() if _alive(pid, name))

    def node_state(self) -> str:
        out = self.run("sinfo", "-h", "-N", "-o", "%t", check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    def save(self) -> None:
        state = {"conf": str(self.conf), "pids": self.pids}
        (self.root / STATE_FILE).write_text(json.dumps(state, indent=1))

    @classmethod
    def load(cls, root: Path) -> Cluster:
        state = json.loads((Path(root) / STATE_FILE).read_text())
        return cls(
            root=Path(root), conf=Path(state["conf"]), pids={k: int(v) for k, v in state["pids"].items()}
        )

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
    # A UTS namespace whose host name is localhost (module docstring); unshare and sh exec the daemon in
    # the same process, so the PID is the daemon's. A new session: a Ctrl-C in the starting terminal (or
    # pytest's) does not reach the daemons; they are stopped explicitly by PID.
    in_namespace = [
        _which("unshare"),
        "--uts",
        "--",
        "/bin/sh",
        "-c",
        f'{_which("hostname")} {HOST_NAME} && exec "$0" "$@"',
        *cmd,
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            in_namespace,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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


def _write_munge_key(path: Path) -> None:
    """A fresh random key, readable by its owner only from its creation on (never briefly 0644)."""
    if path.exists() or path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    try:
        os.fchmod(fd, 0o400)  # whatever the umask
        os.write(fd, os.urandom(1024))
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ListeningSocket:
    """A socket a process listens on (TCP) or is bound to (UDP): ``address`` as text, e.g. 127.0.0.1."""

    pid: int
    program: str
    protocol: str  # tcp, tcp6, udp, udp6
    address: str
    port: int


def _proc_net_entries() -> dict[int, tuple[str, str, int]]:
    """Socket inode -> (protocol, local address, port) of every listening TCP and bound UDP socket."""
    entries: dict[int, tuple[str, str, int]] = {}
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/net") / protocol
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            # TCP: state 0A is LISTEN; UDP: 07 (unconnected) is a socket that receives from anyone.
            if inode and state == ("0A" if protocol.startswith("tcp") else "07"):
                hex_addr, hex_port = local.split(":")
                entries[inode] = (protocol, _address(hex_addr), int(hex_port, 16))
    return entries


def _address(hex_addr: str) -> str:
    """A /proc/net address (host-order 32-bit words in hex) as text."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except (FileNotFoundError, PermissionError):
        return inodes
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening_sockets(pids: dict[int, str]) -> list[ListeningSocket]:
    """Every listening TCP / bound UDP socket of the given processes (PID -> program name), from /proc."""
    entries = _proc_net_entries()
    return [
        ListeningSocket(pid, program, *entries[inode])
        for pid, program in sorted(pids.items())
        for inode in sorted(_socket_inodes(pid))
        if inode in entries
    ]


def _program(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def namespace_processes(pids: Iterable[int]) -> dict[int, str]:
    """PID -> program of every process in the UTS namespaces of ``pids`` (the daemons and all they start)."""
    namespaces = set()
    for pid in pids:
        try:
            namespaces.add(os.readlink(f"/proc/{pid}/ns/uts"))
        except OSError:
            pass
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ns = os.readlink(entry / "ns" / "uts")
        except OSError:
            continue
        if ns in namespaces and (program := _program(int(entry.name))) is not None:
            out[int(entry.name)] = program
    return out


def start(root: str | os.PathLike, timeout: float = 60) -> Cluster:
    """Start munged, slurmctld and slurmd for a private cluster under ``root``; wait for an idle node.

    Raises ClusterError (naming the missing program or the log to read) if anything fails; daemons
    already started are stopped before it is raised.
    """
    missing = missing_binaries()
    if missing:
        raise ClusterError(
            f"missing programs: {', '.join(missing)} (install Debian's slurmctld slurmd "
            "slurm-client munge, e.g. scripts/install-system-deps.sh)"
        )
    if os.geteuid() != 0:
        raise ClusterError("the private cluster runs its daemons as SlurmUser=root: run as root")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    cpus, mem_mb = _node_hardware()
    conf = write_config(root, cpus, mem_mb, _free_port(), _free_port())
    cluster = Cluster(root=root, conf=conf)
    logs, munge_dir = root / "log", root / "munge"

    _write_munge_key(munge_dir / "munge.key")
    key = munge_dir / "munge.key"
    socket_path = munge_dir / "munge.socket"
    cluster.pids["munged"] = _spawn(
        [
            _which("munged"),
            "--foreground",
            "--force",
            f"--socket={socket_path}",
            f"--key-file={key}",
            f"--pid-file={munge_dir / 'munged.pid'}",
            f"--seed-file={munge_dir / 'munged.seed'}",
            f"--log-file={logs / 'munged.log'}",
        ],
        logs / "munged.out",
    )
    cluster.save()
    _wait_for(socket_path.exists, timeout, "the munge socket", cluster, logs / "munged.log")

    cluster.pids["slurmctld"] = _spawn(
        [_which("slurmctld"), "-D", "-i", "-f", str(conf)], logs / "slurmctld.out"
    )
    cluster.save()
    _wait_for(
        lambda: cluster.run("scontrol", "ping", check=False).stdout.count("UP") > 0,
        timeout,
        "slurmctld to answer",
        cluster,
        logs / "slurmctld.log",
    )

    cluster.pids["slurmd"] = _spawn(
        [_which("slurmd"), "-D", "-f", str(conf), "-N", NODE_NAME], logs / "slurmd.out"
    )
    cluster.save()
    _wait_for(
        lambda: cluster.node_state() == "idle",
        timeout,
        f"node {NODE_NAME} to be idle",
        cluster,
        logs / "slurmd.log",
    )
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
        print(
            f"slurm_cluster: error: no running cluster recorded in {args.dir / STATE_FILE}", file=sys.stderr
        )
        return 1
    cluster = Cluster.load(args.dir)
    if args.action == "status":
        for name, pid in cluster.pids.items():
            print(f"{name} pid {pid}: {'running' if _alive(pid, name) else 'not running'}")
        print(f"node {cluster.node}: {cluster.node_state() or 'unreachable'}")
        for sock in listening_sockets(cluster.processes()):
            print(f"{sock.program} pid {sock.pid} listens on {sock.protocol} {sock.address}:{sock.port}")
        return 0
    cluster.stop()
    print("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
