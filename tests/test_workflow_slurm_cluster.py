"""Parts of the private Slurm cluster (workflow/scripts/slurm_cluster.py) that need no Slurm: the munge
key's mode and the /proc reader that tests/test_slurm.py uses to check what the daemons listen on."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("slurm_cluster", ROOT / "workflow/scripts/slurm_cluster.py")
slurm_cluster = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("slurm_cluster", slurm_cluster)
_spec.loader.exec_module(slurm_cluster)


def test_munge_key_is_created_owner_read_only(tmp_path, monkeypatch):
    """Mode 0400 from its creation on: with a umask of 0 and no later chmod, the key is still 0400."""
    for name in ("chmod", "fchmod", "lchmod"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, lambda *a, **k: None)
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    old = os.umask(0)
    try:
        key = tmp_path / "munge.key"
        key.write_text("an older key")
        slurm_cluster._write_munge_key(key)
    finally:
        os.umask(old)
    assert key.stat().st_mode & 0o777 == 0o400
    assert key.stat().st_size == 1024 and key.read_bytes() != b"an older key"


def test_listening_sockets_reads_every_address_from_proc():
    """A loopback and a wildcard listener of this process, TCP and UDP: each found with its address."""
    opened = []
    try:
        for kind, address in (
            (socket.SOCK_STREAM, "127.0.0.1"),
            (socket.SOCK_STREAM, "0.0.0.0"),
            (socket.SOCK_DGRAM, "0.0.0.0"),
        ):
            s = socket.socket(socket.AF_INET, kind)
            s.bind((address, 0))
            if kind == socket.SOCK_STREAM:
                s.listen()
            opened.append((s, "tcp" if kind == socket.SOCK_STREAM else "udp", address, s.getsockname()[1]))
        if socket.has_ipv6:
            try:
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s.bind(("::1", 0))
                s.listen()
                opened.append((s, "tcp6", "::1", s.getsockname()[1]))
            except OSError:
                pass  # no IPv6 loopback here
        found = {
            (x.protocol, x.address, x.port) for x in slurm_cluster.listening_sockets({os.getpid(): "python"})
        }
        for _, protocol, address, port in opened:
            assert (protocol, address, port) in found, found
    finally:
        for s, *_ in opened:
            s.close()


def test_listening_sockets_ignores_connected_sockets():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        found = slurm_cluster.listening_sockets({os.getpid(): "python"})
        ports = {x.port for x in found}
        assert server.getsockname()[1] in ports and client.getsockname()[1] not in ports
    finally:
        for s in (peer, client, server):
            s.close()


@pytest.mark.skipif(not Path("/proc/self/ns/uts").exists(), reason="no /proc namespaces")
def test_namespace_processes_finds_this_process():
    assert os.getpid() in slurm_cluster.namespace_processes([os.getpid()])
