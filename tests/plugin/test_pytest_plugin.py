"""The `turing` pytest plugin (entry point pytest11) as a user's project meets it: each
fixture used from a user's test file, and the guard against real model calls."""

from __future__ import annotations

import os
import textwrap

import pytest

# A user's project: a workflow whose step calls the actor "triage", sourced from a table
# and sinking to another, used by the user test files below.
FLOWS = """
from pydantic import BaseModel
from turing import LLMStep, Sink, Source, Workflow

class Ticket(BaseModel):
    ticket_id: int
    text: str

class Triage(BaseModel):
    ticket_id: int
    category: str

triage = Workflow(
    "triage", input=Ticket, output=Triage, subject_key="ticket_id",
    source=Source(sql="SELECT ticket_id, text FROM tickets t WHERE NOT EXISTS "
                      "(SELECT 1 FROM triaged r WHERE r.ticket_id = t.ticket_id)"),
    sink=Sink.sql("INSERT INTO triaged (ticket_id, category) VALUES (:ticket_id, :category)"),
    steps=[LLMStep("classify", actor="triage", prompt="Classify {{ ticket_id }}: {{ text }}")],
)
WORKFLOWS = [triage]
"""

TABLES = """
CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE triaged (ticket_id INTEGER PRIMARY KEY, category TEXT NOT NULL)
"""

# turing_db as a user writes it: tables, rows, a run with a fake model, the sink's rows.
USES_DB_AND_FAKE_MODEL = f'''
import os
from turing.testing import orchestrator
from flows import triage

TABLES = """{TABLES}"""

def test_run_writes_results(turing_db, turing_fake_model):
    assert os.environ["TURING_DATABASE"] == turing_db.url
    turing_db.script(TABLES)
    for i, text in [(1, "refund please"), (2, "it crashes")]:
        turing_db.execute("INSERT INTO tickets VALUES (:i, :t)", {{"i": i, "t": text}})
    model = turing_fake_model(lambda req: {{
        "ticket_id": req.variables["ticket_id"],
        "category": "billing" if "refund" in req.variables["text"] else "bug",
    }})
    orch = orchestrator([triage], database=turing_db, actors={{"triage": model}})
    try:
        report = orch.process_pending_tasks()
    finally:
        orch.close()
    assert (report.processed, report.succeeded) == (2, 2)
    assert len(model.requests) == 2
    rows = turing_db.query("SELECT ticket_id, category FROM triaged ORDER BY ticket_id")
    assert [(r["ticket_id"], r["category"]) for r in rows] == [(1, "billing"), (2, "bug")]
    print("BACKEND", turing_db.backend, turing_db.url)

def test_scripted_answers_run_out_loudly(turing_fake_model):
    import asyncio
    import pytest
    from turing import Message, ModelRequest
    from turing.errors import ActorError
    model = turing_fake_model(['{{"a": 1}}'])
    request = ModelRequest(messages=(Message("user", "hi"),))
    assert asyncio.run(model.complete(request)).text == '{{"a": 1}}'
    with pytest.raises(ActorError, match="no scripted response left"):
        asyncio.run(model.complete(request))

def test_each_test_gets_its_own_database(turing_db):
    turing_db.script(TABLES)  # would fail if the other test's tables were still there
    assert turing_db.query("SELECT count(*) AS n FROM tickets") == [{{"n": 0}}]
'''

# The simulator with a real provider: allowed by the guard, stopped at teardown.
USES_SIM = """
import asyncio
import pytest
from turing import Message, ModelRequest, providers
from turing.actors.settings import ActorSettings

SEEN = []

def test_ollama_provider_against_the_simulator(turing_sim):
    SEEN.append(turing_sim)
    assert turing_sim.url.startswith("http://127.0.0.1:")
    actor = providers.create(ActorSettings.parse("ollama:qwen2.5:7b", base_url=turing_sim.url))
    request = ModelRequest(
        messages=(Message("user", "Give a label."),),
        schema={"type": "object", "properties": {"label": {"type": "string"}},
                "required": ["label"]},
    )
    response = asyncio.run(actor.complete(request))
    assert "label" in response.text
    assert turing_sim.stats()["calls"] == 1

@pytest.mark.turing_sim(profile="fast", seed=3)
def test_the_marker_configures_it(turing_sim):
    SEEN.append(turing_sim)
    assert turing_sim.config.seed == 3

def test_previous_simulators_were_stopped():
    assert SEEN and all(sim._thread is None for sim in SEEN)
"""

# A real provider (Ollama on a port where nothing answers): blocked unless allowed.
REAL_CALL = """
import asyncio
import pytest
from turing import Message, ModelRequest, providers
from turing.actors.settings import ActorSettings

def call_real_model():
    settings = ActorSettings.parse(
        "ollama:qwen2.5:7b", base_url="http://127.0.0.1:9", max_retries=0, timeout=2
    )
    actor = providers.create(settings)
    return asyncio.run(actor.complete(ModelRequest(messages=(Message("user", "hi"),), timeout=2)))

def test_direct_call():
    with pytest.raises(Exception) as caught:  # a connection error when allowed
        call_real_model()
    assert "blocked" not in str(caught.value)

@pytest.mark.turing_allow_models
def test_marked_call():
    with pytest.raises(Exception) as caught:
        call_real_model()
    assert "blocked" not in str(caught.value)
"""

# The guard through a whole project (turing.toml, Orchestrator.from_config, execute).
PROJECT_CALL = """
import pytest
from turing import Orchestrator

def test_project_run(turing_db):
    turing_db.script('''TABLES''')
    orch = Orchestrator.from_config()
    try:
        result = orch.execute_workflow("triage", {"ticket_id": 1, "text": "hi"})
    except Exception as exc:  # whatever the code under test catches, the guard still fails
        result = exc
    finally:
        orch.close()
    assert result is not None
""".replace("TABLES", TABLES)


PG_DSN = os.environ.get("TURING_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A user's project folder; the user's session sees no TURING_* variable of ours."""
    for key in [k for k in os.environ if k.startswith("TURING_")]:
        monkeypatch.delenv(key)
    pytester.makepyfile(flows=FLOWS)
    pytester.makefile(
        ".toml",
        turing='[project]\nworkflows = ["flows"]\n\n[actors]\n'
        'triage = { spec = "ollama:qwen2.5:7b", base_url = "http://127.0.0.1:9", '
        "max_retries = 0 }\n",
    )
    pytester.syspathinsert()
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # a subprocess: the user's session exactly as it would be (entry point, env, imports)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def test_the_plugin_is_registered_by_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--turing-pg-dsn*", "*--turing-allow-models*"])
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*turing_allow_models*", "*turing_sim*"])


def test_turing_db_and_the_fake_model_on_sqlite(project: pytest.Pytester) -> None:
    project.makepyfile(test_user=USES_DB_AND_FAKE_MODEL)
    result = _run(project, "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*BACKEND sqlite sqlite:///*turing.db*"])


def test_turing_db_on_postgres_gets_a_fresh_schema_dropped_afterwards(
    project: pytest.Pytester,
) -> None:
    dsn = PG_DSN
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        if os.environ.get("TURING_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL at {dsn} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {dsn} is unreachable: {exc}")
    project.makepyfile(test_user=USES_DB_AND_FAKE_MODEL)
    result = _run(project, "-s", f"--turing-pg-dsn={dsn}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*BACKEND postgres postgresql://*schema=turing_test_*"])
    schemas = [line.split("schema=")[1].split()[0] for line in result.outlines if "BACKEND" in line]
    with psycopg.connect(dsn) as conn:
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (schemas,)
        ).fetchall()
    assert left == []


def test_an_unreachable_postgres_dsn_fails_clearly(project: pytest.Pytester) -> None:
    project.makepyfile(test_user="def test_db(turing_db):\n    pass\n")
    result = _run(project, "--turing-pg-dsn=postgresql://nobody@127.0.0.1:9/none")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PostgreSQL at postgresql://nobody@127.0.0.1:9/none*"])


@pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("starlette", "uvicorn")),
    reason="the simulator needs turing[sim]",
)
def test_turing_sim_serves_a_real_provider_and_stops(project: pytest.Pytester) -> None:
    project.makepyfile(test_user=USES_SIM)
    result = _run(project)
    result.assert_outcomes(passed=3)


def test_the_guard_blocks_a_real_provider_call_unless_marked(project: pytest.Pytester) -> None:
    project.makepyfile(test_user=REAL_CALL)
    result = _run(project)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_direct_call*",
            "*real model call blocked by the turing pytest plugin: actor 'ollama:qwen2.5:7b'"
            " (ollama:qwen2.5:7b at http://127.0.0.1:9)*allow it with"
            " @pytest.mark.turing_allow_models*",
        ]
    )
    assert "test_marked_call FAILED" not in result.stdout.str()


def test_the_option_and_the_environment_allow_real_calls(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_user=REAL_CALL)
    _run(project, "--turing-allow-models").assert_outcomes(passed=2)
    monkeypatch.setenv("TURING_ALLOW_MODELS", "1")
    _run(project).assert_outcomes(passed=2)


def test_the_guard_fails_a_project_run_even_when_the_error_is_swallowed(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_user=PROJECT_CALL)
    result = _run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*real model call*blocked by the turing pytest plugin*"])


def test_loading_the_plugin_imports_no_optional_dependency(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import sys

            def test_nothing_heavy():
                heavy = ("psycopg", "ollama", "openai", "anthropic", "starlette", "uvicorn",
                         "httpx", "turing.sim.app")
                assert [m for m in heavy if m in sys.modules] == []
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins:*turing-*"])
