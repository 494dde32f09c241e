"""`turing sim-llm` as a real subprocess: starts on a free port, answers, terminates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.acceptance

ROOT = Path(__file__).resolve().parents[2]


def test_sim_llm_serves_and_stops() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "turing",
            "sim-llm",
            "--port",
            "0",
            "--profile",
            "fast",
            "--seed",
            "3",
            "--responder",
            "talent.responder:responder",
        ],
        cwd=ROOT / "examples" / "talent",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        seen = []
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if " on http://127.0.0.1:" in line:
                url = line.split(" on ", 1)[1].split()[0]
        assert url, "".join(seen)
        assert "profile fast, seed 3" in "".join(seen) + proc.stdout.readline()
        for _ in range(100):
            try:
                tags = httpx.get(url + "/api/tags", timeout=2)
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert tags.status_code == 200
        assert "qwen2.5:7b" in [m["name"] for m in tags.json()["models"]]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 130, -signal.SIGINT)


def test_sim_llm_refuses_a_public_host() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "turing", "sim-llm", "--host", "0.0.0.0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "not a loopback address" in proc.stderr
