"""`rlmu workflow`: study files Snakemake would read are checked first, so an unreadable one is one line
naming the file (and line), never Snakemake's traceback; a good study reaches Snakemake unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlmu.workflow import study_files

ROOT = Path(__file__).resolve().parents[1]
RLMU = str(Path(sys.executable).with_name("rlmu"))


def rlmu_workflow(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-k", "10", str(timeout), RLMU, "workflow", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 30)


BAD_FILES = {
    "not_utf8": (lambda p: p.write_bytes(b"\xff\xfe\x00study: x\n"), "not UTF-8 text"),
    "utf16": (lambda p: p.write_bytes("study: x\n".encode("utf-16")), "not UTF-8 text"),
    "directory": (lambda p: p.mkdir(), "is a directory"),
    "yaml_error": (lambda p: p.write_text("study: x\n  tasks: [\n"), ":2:"),
    "empty": (lambda p: p.write_text(""), "is empty"),
    "top_level_list": (lambda p: p.write_text("- a\n- b\n"), "holds a list"),
    "unknown_key": (lambda p: p.write_text("study: x\ncolour: red\n"), "colour"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_study_file_is_one_line_naming_it(tmp_path, case):
    make, expected = BAD_FILES[case]
    path = tmp_path / "study.yaml"
    make(path)
    out = rlmu_workflow("-n", "--configfile", str(path), "-d", str(tmp_path / "work"))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr and str(path) in lines[0] and expected in lines[0], lines[0]
    assert not (tmp_path / "work").exists()  # Snakemake never ran


def test_snakemake_alone_gives_a_traceback_for_such_files(tmp_path):
    """Why the command exists: Snakemake's own reading of a non-UTF-8 --configfile is a traceback."""
    path = tmp_path / "study.yaml"
    path.write_bytes(b"\xff\xfe\x00study: x\n")
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    cmd = ["timeout", "-k", "10", "120", snakemake, "-n", "--configfile", str(path), "-d", str(tmp_path)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert "Traceback" in out.stdout + out.stderr


def test_a_good_study_reaches_snakemake_with_its_arguments(tmp_path):
    out = rlmu_workflow(
        "--profile", "profiles/local", "--configfile", "config/quick.yaml", "-n", "-d", str(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    assert "Job stats:" in out.stdout + out.stderr  # Snakemake's dry run, in an empty working directory


def test_the_profiles_study_file_is_checked_when_none_is_given():
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert study_files(["--profile", "slurm", "-n"]) == [profile["configfile"]]
    assert study_files(["--profile", "profiles/local"]) == []  # no configfile: Snakemake's own default
    assert study_files(["--configfile", "a.yaml", "b.yaml", "-n"]) == ["a.yaml", "b.yaml"]
    assert study_files(["--configfile=a.yaml", "--profile", "slurm"]) == ["a.yaml"]
