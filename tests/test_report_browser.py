"""The report renders in a real browser: headless Chromium loads report.html from disk, with every network
feature off, and the page's own render check (a hidden ``#render-check`` element written on the load
event) is read from ``--dump-dom``; a screenshot is taken and checked to be a real, non-blank image.

Why this approach: it needs no extra Python package (no websocket client for the DevTools protocol).
The page's inline script counts images with ``naturalWidth > 0`` and records script errors, failed
resources and Content-Security-Policy violations (any attempted external request); Chromium's own
console log (``--enable-logging=stderr``) is checked for errors too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from study_factory import VariantSpec, inject_fault, write_study

from rlmu.cli import main

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def _chromium(user_dir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={user_dir}",
        "--virtual-time-budget=10000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    study = write_study(
        root / "browser_study",
        seeds=4,
        epochs=15,
        variants={
            "sac": VariantSpec(0.75),
            "rlv": VariantSpec(0.5, speed=2.0),
            "rlmu": VariantSpec(0.75, speed=1.5),
        },
    )
    inject_fault(study / "runs/push/rlmu/seed_0", "nan_rows")
    assert main(["report", str(study), "--reps", "300", "--curve-reps", "50"]) == 0
    return study / "report.html"


def test_report_renders_in_chromium(report, tmp_path):
    res = _chromium(tmp_path / "profile_dom", "--dump-dom", report.resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "<title>rlmu report: browser_study</title>" in dom
    m = re.search(r'<div id="render-check"[^>]*>', dom)
    assert m, "the page's load handler did not run (no #render-check in the DOM)"
    attrs = dict(re.findall(r'data-(\w+)="([^"]*)"', m.group(0)))
    n_images = int(attrs["images"])
    assert n_images == len(list((report.parent / "figures").glob("*.png"))) == 9
    assert int(attrs["loaded"]) == n_images, attrs
    errors = json.loads(attrs["errors"].replace("&quot;", '"'))
    assert errors == [], errors
    # Console errors logged by Chromium for the page (uncaught exceptions, CSP violations, failed loads).
    console = [line for line in res.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if re.search(r"error|refused|failed", line, re.I)], console


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    res = _chromium(
        tmp_path / "profile_shot",
        "--window-size=1400,2400",
        f"--screenshot={shot}",
        report.resolve().as_uri(),
    )
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1400, 2400)
        gray = im.convert("L")
        # Not a blank page: text and figures give many distinct grey levels and dark pixels.
        hist = gray.histogram()
        assert sum(1 for h in hist if h > 0) > 50
        assert sum(hist[:100]) > 1000
    keep = Path(shutil.copy(shot, report.parent / "report_screenshot.png"))
    assert keep.stat().st_size > 10_000
