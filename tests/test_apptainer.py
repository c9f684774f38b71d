"""The Apptainer recipe: header, sections, and the same pinned versions as local installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_recipe(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(header key -> value, section name -> body) of an Apptainer definition file."""
    header, sections, current = {}, {}, None
    for line in text.splitlines():
        m = re.match(r"^%(\w+)\s*$", line)
        if m:
            current = m.group(1)
            sections[current] = ""
        elif current is None:
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition(":")
                header[key.strip()] = value.strip()
        else:
            sections[current] += line + "\n"
    return header, sections


def lock_versions() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[name.lower()] = version
    return out


def test_recipe_header_and_sections():
    header, sections = parse_recipe((ROOT / "Apptainerfile").read_text())
    assert header["Bootstrap"] == "docker"
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-(cudnn-)?runtime-ubuntu[\d.]+", header["From"]), header["From"]
    for name in ("post", "environment", "test", "runscript", "labels", "help", "files"):
        assert sections.get(name, "").strip(), f"missing or empty %{name}"
    assert "MUJOCO_GL=egl" in sections["environment"]
    assert "rlmu" in sections["runscript"] and '"$@"' in sections["runscript"]
    for lib in ("libegl1", "libgl1", "libglvnd0"):
        assert lib in sections["post"]
    assert "torch.cuda.is_available()" in sections["test"] and "max() > 0" in sections["test"]


def test_recipe_installs_the_local_lock_file():
    header, sections = parse_recipe((ROOT / "Apptainerfile").read_text())
    # %files copies the repository's lock; %post installs from that copy.
    files = dict(line.split() for line in sections["files"].splitlines() if line.strip())
    lock_in_image = files["requirements.lock"]
    pip_lines = [ln.strip() for ln in sections["post"].splitlines() if "pip install" in ln]
    assert any(f"-r {lock_in_image}" in ln for ln in pip_lines), pip_lines
    assert any("--no-deps ." in ln for ln in pip_lines), pip_lines  # the package itself, nothing re-resolved
    # The local setup installs from the same file.
    assert "-r requirements.lock" in (ROOT / "scripts/setup.sh").read_text()


def test_recipe_torch_matches_the_lock():
    header, sections = parse_recipe((ROOT / "Apptainerfile").read_text())
    pins = re.findall(r"torch==([\w.+]+)", sections["post"])
    assert pins, "the recipe must pin torch"
    assert set(pins) == {lock_versions()["torch"]}
    labels = dict(line.split(None, 1) for line in sections["labels"].splitlines() if line.strip())
    assert labels["rlmu.torch"] == lock_versions()["torch"]
