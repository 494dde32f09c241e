"""Profiles, settings validation, and the simulator's optional dependencies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from turing.errors import ConfigError
from turing.sim import FAULT_KINDS, PROFILES, QUALITY_FAULTS, ModelLatency, SimConfig, Simulator


def test_profiles() -> None:
    assert set(PROFILES) == {"fast", "default", "demo", "chaos", "gpu"}
    fast = SimConfig.profile("fast")
    assert fast.time_scale == 0 and not fast.faults
    assert not SimConfig.profile("default").faults and SimConfig.profile("default").time_scale > 0
    gpu = SimConfig.profile("gpu")
    assert gpu.models_resident == 1 and gpu.swap_s == 2.0
    chaos = SimConfig.profile("chaos", seed=9, hang_s=1.0)
    assert (
        chaos.seed == 9
        and chaos.hang_s == 1.0
        and set(chaos.faults) == set(FAULT_KINDS) - QUALITY_FAULTS
    )


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown simulator profile 'nope'"):
        SimConfig.profile("nope")
    with pytest.raises(ConfigError, match="unknown fault kind"):
        SimConfig(faults={"explode": 0.1})
    with pytest.raises(ConfigError, match="sum to <= 1"):
        SimConfig(faults={"http_500": 0.7, "empty": 0.5})
    with pytest.raises(ConfigError, match="unknown simulator setting"):
        SimConfig.profile("fast", speed=3)
    with pytest.raises(ConfigError, match="jitter"):
        ModelLatency(jitter=1.5)


def test_importing_turing_does_not_need_the_sim_extra() -> None:
    code = (
        "import sys; import turing, turing.sim; "
        "print(any(m.split('.')[0] in ('starlette', 'uvicorn') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("module", ["uvicorn", "turing.sim.app"])
def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError, match=r"pip install 'turing\[sim\]'"):
        Simulator(SimConfig.profile("fast")).start()


def test_a_forgotten_simulator_stops_at_exit() -> None:
    code = (
        "import httpx; from turing.sim import Simulator; sim = Simulator().start(); "
        "print(httpx.get(sim.url + '/api/tags').status_code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=20
    )
    assert out.stdout.strip() == "200"
