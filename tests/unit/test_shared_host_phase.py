"""The shared model phase (`turing.actors.shared_host.next_phase`) and `shared_host` in
turing.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from turing import ConfigError
from turing.actors.affinity import HostSchedulers
from turing.actors.shared_host import Demand, PhaseModel, next_phase
from turing.config import ProviderTable
from turing.store.db import connect

A, B, C = "a", "b", "c"


def d(holder: str, model: str, in_flight: int, queued: int, since: float | None = 0.0) -> Demand:
    return Demand(holder, model, in_flight, queued, since, updated_at=0.0)


def test_the_model_with_most_queued_calls_joins_an_empty_phase() -> None:
    demand = [d("p1", A, 0, 2), d("p2", B, 0, 3), d("p1", B, 0, 1)]
    phase = next_phase([], demand, models_resident=1, max_wait_s=None, now=1.0)
    assert phase == [PhaseModel(B, 1.0)]
    two = next_phase([], demand, models_resident=2, max_wait_s=None, now=1.0)
    assert [pm.model for pm in two] == [B, A]


def test_a_model_stays_while_any_process_wants_it_and_leaves_when_none_does() -> None:
    phase = [PhaseModel(A, 0.0)]
    busy = [d("p1", A, 1, 0), d("p2", B, 0, 9)]
    assert next_phase(phase, busy, models_resident=1, max_wait_s=None, now=5.0) == phase
    queued_elsewhere = [d("p1", A, 0, 0), d("p2", A, 0, 1), d("p2", B, 0, 9)]
    assert next_phase(phase, queued_elsewhere, models_resident=1, max_wait_s=None, now=5) == phase
    done = [d("p2", B, 0, 9)]
    assert next_phase(phase, done, models_resident=1, max_wait_s=None, now=5.0) == [
        PhaseModel(B, 5.0)
    ]


def test_starvation_closes_the_oldest_phase_model_once_it_had_its_turn() -> None:
    phase = [PhaseModel(A, 0.0)]
    demand = [d("p1", A, 1, 50), d("p2", B, 0, 1, since=0.0)]
    # B has waited 10 s, but A joined only 5 s ago: A keeps its turn
    assert next_phase([PhaseModel(A, 5.0)], demand, models_resident=1, max_wait_s=10, now=10.0)[
        0
    ].open
    closed = next_phase(phase, demand, models_resident=1, max_wait_s=10.0, now=10.0)
    assert closed == [PhaseModel(A, 0.0, 10.0)]
    # still in flight: A stays closed; no room for B
    assert next_phase(closed, demand, models_resident=1, max_wait_s=10.0, now=11.0) == closed
    # drained, but p3 queued for A before the closure and has not synced since: A stays
    stale = [Demand("p3", A, 0, 4, 0.0, updated_at=9.0), d("p2", B, 0, 1)]
    assert next_phase(closed, stale, models_resident=1, max_wait_s=10.0, now=12.0) == closed
    seen = [Demand("p3", A, 0, 4, 0.0, updated_at=10.5), d("p2", B, 0, 1)]
    assert next_phase(closed, seen, models_resident=1, max_wait_s=10.0, now=12.0) == [
        PhaseModel(B, 12.0)
    ]


def test_a_starved_model_takes_a_free_place_before_a_busier_one() -> None:
    demand = [d("p1", A, 0, 100, since=50.0), d("p2", C, 0, 1, since=0.0)]
    phase = next_phase([], demand, models_resident=1, max_wait_s=30.0, now=60.0)
    assert [pm.model for pm in phase] == [C]


def test_shared_host_needs_models_resident() -> None:
    with pytest.raises(ValueError, match="shared_host: set models_resident"):
        ProviderTable(shared_host=True, host_concurrency=1)
    assert ProviderTable(shared_host=True, models_resident=1).shared_host


def test_shared_host_error_in_turing_toml(tmp_path: Path) -> None:
    from turing import Project

    (tmp_path / "turing.toml").write_text("[providers.ollama]\nshared_host = true\n")
    with pytest.raises(ConfigError, match="shared_host"):
        Project.load(tmp_path / "turing.toml")


def test_host_schedulers_attach_a_shared_phase_to_shared_hosts_only(tmp_path: Path) -> None:
    from turing.store.migrations import migrate

    db = connect(f"sqlite:///{tmp_path / 't.db'}")
    try:
        migrate(db)
        hosts = HostSchedulers()
        shared = hosts.get("http://localhost:11434/v1", models_resident=1, max_concurrency=1,
                           shared=True)  # fmt: skip
        alone = hosts.get("http://127.0.0.1:8000", models_resident=1, max_concurrency=1)
        assert shared.shared is None  # no database yet
        hosts.share(db, holder="w1")
        assert shared.shared is not None and shared.shared.holder == "w1"
        assert shared.shared.host == "http://127.0.0.1:11434"
        assert alone.shared is None
        later = hosts.get("http://10.0.0.1:11434", models_resident=2, max_concurrency=None,
                          shared=True)  # fmt: skip
        assert later.shared is not None and later.shared.models_resident == 2
    finally:
        db.close()
