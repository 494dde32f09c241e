"""The dashboard on both backends, through Starlette's TestClient: every page renders real
data, filters and keyset pages are right, controls go through the guarded operations, and
the security promises hold (CSRF, cross-origin, read-only, token, no secret rendered)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")  # python-multipart: forms

from pydantic import BaseModel
from starlette.testclient import TestClient

from integration.conftest import Backend
from integration.domain import (
    INSERT_RESULT,
    PENDING_ITEMS,
    Calls,
    ItemIn,
    count_words,
    orchestrator,
    rows,
    tag_items,
)
from turing import ScriptStep, Sink, Source, Workflow
from turing.dashboard import create_app
from turing.orchestrator import Orchestrator
from turing.project import Project
from turing.review import flagged
from turing.store import Store, open_store
from turing.store.browse import BrowseStore, TaskFilter
from turing.store.leases import LeaseStore

ORIGIN = "http://127.0.0.1"  # without a token the dashboard answers on loopback only


@dataclass
class Site:
    client: TestClient
    orch: Orchestrator
    store: Store
    calls: Calls

    def csrf(self, path: str = "/tasks") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, "no CSRF field on the page"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any], **kw: Any) -> Any:
        headers = kw.pop("headers", {"origin": ORIGIN})
        return self.client.post(path, data=data, headers=headers, follow_redirects=False, **kw)


@pytest.fixture
def site(domain: Store, tmp_path: Path) -> Iterator[Site]:
    """Items 1..10 counted (2 and 7 fail: a script crash), tagged by the fake model (with
    repairs), and a worker's heartbeat; the dashboard on top, controls on."""
    calls = Calls(fail_ids={2, 7})
    orch = orchestrator(domain, count_words(calls), tag_items())
    orch.process_pending_tasks()
    LeaseStore(domain.db).extend("worker-a", 60)
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "two_steps.json").write_text(
        '{"goal": "count then tag", "steps": ['
        '{"id": "s1", "workflow": "count_words", "for_each": {}},'
        ' {"id": "s2", "workflow": "tag_items", "for_each": {}, "after": ["s1"]}]}'
    )
    app = create_app(orch, who="tester", plans_dir=plans)
    with TestClient(app, base_url=ORIGIN) as client:
        yield Site(client, orch, domain, calls)


def test_every_page_renders_real_data(site: Site) -> None:
    overview = site.client.get("/").text
    assert "count_words" in overview and "tag_items" in overview
    assert "worker-a" in overview  # the heartbeat's row: a live worker
    tasks = site.client.get("/tasks").text
    assert tasks.count("/tasks/") >= 20  # 20 tasks, each linked
    failures = site.client.get("/failures").text
    assert "script_crash" in failures and "cannot count item" in failures
    run_id = rows(site.store, "SELECT MAX(id) AS id FROM turing_runs WHERE workflow = 'tag_items'")
    run = site.client.get(f"/runs/{run_id[0]['id']}").text
    for part in ("Tag item", "raw answer", "fingerprint", "Repairs", "Output"):
        assert part in run, part
    charts = site.client.get("/charts").text
    assert "<svg" in charts and "tag_items · tag" in charts
    plan = site.client.get("/plans/two_steps").text
    assert "<svg" in plan and "8 of 10 done" in plan  # count_words: 8 succeeded of 10
    assert site.client.get("/schedules").status_code == 200
    assert site.client.get("/reviews").status_code == 200
    task_id = rows(site.store, "SELECT MIN(id) AS id FROM turing_tasks")[0]["id"]
    assert "Runs" in site.client.get(f"/tasks/{task_id}").text
    assert site.client.get("/tasks/999999").status_code == 404
    assert site.client.get("/runs/999999").status_code == 404


def test_filters_select_what_they_say(site: Site) -> None:
    failed = site.client.get("/tasks", params={"status": "failed"}).text
    assert _task_ids(failed) and all(s == "failed" for s in _statuses(failed))
    by_reason = site.client.get("/tasks", params={"reason": "script_crash"}).text
    assert len(_task_ids(by_reason)) == 2
    assert _task_ids(site.client.get("/tasks", params={"reason": "output_invalid"}).text) == []
    tagged = site.client.get("/tasks", params={"workflow": "tag_items"}).text
    assert len(_task_ids(tagged)) == 10
    subject = site.client.get("/tasks", params={"q": "1", "workflow": "count_words"}).text
    assert len(_task_ids(subject)) == 2  # subjects 1 and 10
    recent = site.client.get("/tasks", params={"since": "1h"}).text
    assert len(_task_ids(recent)) == 20
    assert site.client.get("/tasks", params={"status": "nonsense"}).status_code == 400


@pytest.mark.parametrize(
    "f",
    [
        TaskFilter(),
        TaskFilter(status="succeeded"),
        TaskFilter(workflow="count_words"),
        TaskFilter(workflow="tag_items", status="succeeded"),
        TaskFilter(subject="1"),
        TaskFilter(reason="script_crash"),
    ],
)
def test_keyset_pages_cover_every_row_once_in_order(site: Site, f: TaskFilter) -> None:
    browse = BrowseStore(site.store.db)
    seen: list[int] = []
    before = None
    while True:
        page = browse.tasks(f, before=before, limit=3)
        seen += [int(r["id"]) for r in page.rows]
        if page.next_before is None:
            break
        before = page.next_before
    everything = browse.tasks(f, limit=1000).rows
    assert seen == [int(r["id"]) for r in everything]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)


def test_pagination_links_walk_the_list(site: Site) -> None:
    page = site.client.get("/tasks", params={"workflow": "tag_items"})
    ids = _task_ids(page.text)
    assert len(ids) == 10
    # a page of 50 holds all 20; page through the store with a small page through the link
    next_link = re.search(r'href="(/tasks\?[^"]*before=\d+[^"]*)"', page.text)
    assert next_link is None


def test_bulk_retry_by_filter_goes_through_the_operations(site: Site) -> None:
    token = site.csrf()
    site.calls.fail_ids = set()  # the cause is gone
    answer = site.post(
        "/tasks/actions",
        {"csrf": token, "verb": "retry", "scope": "filter", "status": "failed"},
    )
    assert answer.status_code == 200, answer.text
    assert "2 task(s) done" in answer.text
    report = site.orch.process_pending_tasks()
    assert report.succeeded == 2
    audit = rows(site.store, "SELECT who, action FROM turing_audit ORDER BY id")
    assert [(a["who"], a["action"]) for a in audit] == [("tester", "retry")] * 2


def test_cancel_and_pause_resume(site: Site) -> None:
    token = site.csrf()
    [task] = rows(site.store, "SELECT id FROM turing_tasks WHERE status = 'succeeded' LIMIT 1")
    answer = site.post("/tasks/actions", {"csrf": token, "verb": "cancel", "id": task["id"]})
    assert "left alone" in answer.text  # a finished task is not cancelled
    assert site.post("/workflows/count_words/pause", {"csrf": token}).status_code == 303
    assert "paused by tester" in site.client.get("/").text
    assert site.post("/workflows/count_words/resume", {"csrf": token}).status_code == 303
    assert "paused by" not in site.client.get("/").text


def test_post_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    site.csrf()  # a session exists
    for data in ({"verb": "retry", "scope": "filter"}, {"csrf": "forged", "verb": "retry"}):
        answer = site.post("/tasks/actions", data | {"status": "failed"})
        assert answer.status_code == 403
    assert rows(site.store, "SELECT COUNT(*) AS n FROM turing_audit")[0]["n"] == 0


def test_cross_origin_post_is_refused_even_with_the_token(site: Site) -> None:
    token = site.csrf()
    answer = site.post(
        "/tasks/actions",
        {"csrf": token, "verb": "retry", "scope": "filter", "status": "failed"},
        headers={"origin": "http://evil.example"},
    )
    assert answer.status_code == 403
    assert rows(site.store, "SELECT COUNT(*) AS n FROM turing_audit")[0]["n"] == 0


def test_read_only_hides_and_refuses_every_control(domain: Store) -> None:
    calls = Calls(fail_ids={3})
    orch = orchestrator(domain, count_words(calls))
    orch.process_pending_tasks()
    with TestClient(create_app(orch, read_only=True), base_url=ORIGIN) as client:
        page = client.get("/tasks").text
        assert "/tasks/actions" not in page and "Pause" not in client.get("/").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        data = {"csrf": token.group(1) if token else "", "verb": "retry", "scope": "filter"}
        for path in ("/tasks/actions", "/workflows/count_words/pause", "/reviews/1"):
            answer = client.post(path, data=data, headers={"origin": ORIGIN})
            assert answer.status_code == 403, path
    assert rows(domain, "SELECT status FROM turing_tasks WHERE subject = '3'")[0]["status"] == (
        "failed"
    )


def test_a_token_guards_every_page_and_bearer_works(domain: Store) -> None:
    orch = orchestrator(domain, count_words(Calls()))
    with TestClient(create_app(orch, token="s3cret"), base_url=ORIGIN) as client:
        assert client.get("/", follow_redirects=False).status_code == 303  # to /login
        assert client.get("/tasks", headers={"authorization": "Bearer nope"}).status_code == 401
        assert client.get("/tasks", headers={"authorization": "Bearer s3cret"}).status_code == 200
        bad = client.post("/login", data={"token": "nope", "name": "ann", "next": "/"})
        assert bad.status_code == 401
        good = client.post(
            "/login",
            data={"token": "s3cret", "name": "ann", "next": "//evil.example/x"},
            follow_redirects=False,
        )
        assert good.status_code == 303 and good.headers["location"] == "/"
        page = client.get("/")
        assert page.status_code == 200 and "ann" in page.text


def test_no_secret_is_rendered(
    backend: Backend, domain: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An actor's key is named by `api_key_env` and its value is in the environment; the
    database URL and a base URL carry passwords: no page shows a value or a password."""
    secret = "sk-live-THIS-MUST-NOT-SHOW-1234"
    monkeypatch.setenv("TURING_TEST_API_KEY", secret)
    url = backend.url()
    if backend.name == "postgres":  # trust auth: the password is accepted and ignored
        url = url.replace("postgres@", "postgres:hunter2-db-pass@", 1)
    (tmp_path / "turing.toml").write_text(
        f'[project]\ndatabase = "{url}"\n\n[actors.gpt]\nspec = "openai:gpt-4o-mini"\n'
        'api_key_env = "TURING_TEST_API_KEY"\n'
        'base_url = "https://user:hunter2-proxy-pass@llm.example/v1"\n'
    )
    project = Project.load(tmp_path / "turing.toml")
    store = open_store(project.config.database_url())
    try:
        orch = orchestrator(store, count_words(Calls(fail_ids={1})), tag_items())
        orch.process_pending_tasks()
        with TestClient(create_app(orch, project=project), base_url=ORIGIN) as client:
            paths = ["/", "/tasks", "/failures", "/charts", "/schedules", "/reviews"]
            paths += [f"/runs/{r['id']}" for r in rows(store, "SELECT id FROM turing_runs")]
            pages = [client.get(p).text for p in paths]
    finally:
        store.close()
    assert "TURING_TEST_API_KEY" in pages[0]  # the name is shown: where the key comes from
    for page in pages:
        assert secret not in page
        assert "hunter2" not in page
    if backend.name == "postgres":
        assert "postgres:***@" in pages[0]


def _task_ids(page: str) -> list[int]:
    """The task ids of the list's rows, in order."""
    return [int(i) for i in re.findall(r'<td class="num"><a href="/tasks/(\d+)">', page)]


def _statuses(page: str) -> list[str]:
    return re.findall(r'<span class="pill s-(\w+)">', page)


def test_a_heartbeat_shows_its_worker_live_until_it_stops(domain: Store) -> None:
    from turing.leases import LeaseHeartbeat

    browse = BrowseStore(domain.db)
    beat = LeaseHeartbeat(domain, "worker-b", lease_s=60, every_s=30)
    beat.start()
    try:
        for _ in range(500):  # registered by the thread at its start, before any beat
            if any(w.worker == "worker-b" for w in browse.workers()):
                break
            beat.join(0.01)
        [worker] = [w for w in browse.workers() if w.worker == "worker-b"]
        now = worker.beat_at or 0.0
        assert worker.live(now) and worker.lease_s == 60
        assert not worker.live(now + 61)  # a beat older than its lease: gone
    finally:
        beat.stop()
    assert all(w.worker != "worker-b" for w in browse.workers())  # stopped on purpose


class _Held(BaseModel):
    item_id: int
    words: int
    needs_human: bool


def test_review_decisions_through_the_page(domain: Store) -> None:
    """Approve writes the sink row once; an invalid edit is refused and the task stays
    held; a second decision on a decided task is a conflict; reject fails the task."""

    def count(data: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": data["item_id"], "words": len(data["text"].split()),
                "needs_human": data["item_id"] <= 3}  # fmt: skip

    wf = Workflow(
        "held_words",
        input=ItemIn,
        output=_Held,
        subject_key="item_id",
        source=Source(sql=PENDING_ITEMS),
        sink=Sink.sql(INSERT_RESULT),
        review=[flagged("needs_human")],
        steps=[ScriptStep("count", run=count)],
    )
    orch = orchestrator(domain, wf)
    orch.process_pending_tasks()
    held = rows(domain, "SELECT id, subject FROM turing_tasks WHERE status = 'review' ORDER BY id")
    assert [h["subject"] for h in held] == ["1", "2", "3"]
    with TestClient(create_app(orch, who="rita"), base_url=ORIGIN) as client:
        listing = client.get("/reviews").text
        assert all(f"/reviews/{h['id']}" in listing for h in held)
        page = client.get(f"/reviews/{held[0]['id']}").text
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token and "needs_human" in page
        post = {"csrf": token.group(1)}

        def decide(task_id: int, **form: str) -> Any:
            return client.post(
                f"/reviews/{task_id}", data=post | form, headers={"origin": ORIGIN},
                follow_redirects=False,
            )  # fmt: skip

        bad_edit = decide(held[1]["id"], decision="approve", output='{"item_id": 2}')
        assert bad_edit.status_code == 400 and "contract" in bad_edit.text
        assert decide(held[0]["id"], decision="approve").status_code == 303
        again = decide(held[0]["id"], decision="approve")
        assert again.status_code in (404, 400, 409)  # decided: not held any more
        edit = '{"item_id": 2, "words": 99, "needs_human": false}'
        assert decide(held[1]["id"], decision="approve", output=edit).status_code == 303
        assert decide(held[2]["id"], decision="reject", comment="wrong").status_code == 303
    results = rows(domain, "SELECT item_id, words FROM results WHERE item_id <= 3 ORDER BY 1")
    assert [(r["item_id"], r["words"]) for r in results] == [(1, 1), (2, 99)]
    status = rows(domain, f"SELECT status FROM turing_tasks WHERE id = {held[2]['id']}")
    assert status[0]["status"] == "failed"


def test_metrics_are_served(site: Site) -> None:
    pytest.importorskip("prometheus_client")
    text = site.client.get("/metrics/").text
    assert "turing_" in text and "count_words" in text


def test_without_a_token_only_loopback_names_are_answered(site: Site) -> None:
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) is same-origin
    to itself: without a token the dashboard answers only to loopback Host names."""
    for host in ("evil.example", "evil.example:8765", "10.0.0.5"):
        assert site.client.get("/", headers={"host": host}).status_code == 403
    for host in ("127.0.0.1:8765", "localhost", "[::1]:8765"):
        assert site.client.get("/", headers={"host": host}).status_code == 200


def test_requeue_with_a_new_input_is_validated_then_runs_on_it(site: Site) -> None:
    token = site.csrf()
    [task] = rows(
        site.store,
        "SELECT id FROM turing_tasks WHERE workflow = 'count_words' AND subject = '5'",
    )
    form = {"csrf": token, "verb": "requeue", "id": task["id"]}
    bad = site.post("/tasks/actions", form | {"input": '{"item_id": 5}'})  # text missing
    assert bad.status_code == 400 and "text" in bad.text
    assert site.post("/tasks/actions", form | {"input": "[1, 2]"}).status_code == 400
    good = site.post("/tasks/actions", form | {"input": '{"item_id": 5, "text": "a b c"}'})
    assert good.status_code == 200 and "1 task(s) done" in good.text
    with site.store.db.tx() as tx:  # the sink inserts: make room for the new result
        tx.sql("DELETE FROM results WHERE item_id = 5")
    site.orch.process_pending_tasks()
    [result] = rows(site.store, "SELECT words FROM results WHERE item_id = 5")
    assert result["words"] == 3


def test_the_quality_page_shows_the_figures_stats_computes(site: Site) -> None:
    from turing.stats import collect_stats

    figures = collect_stats(site.store, since=0).quality
    [((wf, actor, fp), q)] = [(k, v) for k, v in figures.items() if k[0] == "tag_items"]
    page = site.client.get("/quality").text
    row = page[page.index(f"<td>{wf}</td>") :].split("</tr>")[0]
    assert actor in row and fp[:12] in row
    first_valid = f"{100 * q.rate(q.first_valid, q.answers):.1f}%"
    repaired = f"{100 * q.rate(q.repaired_runs, q.runs):.1f}%"
    assert first_valid in row and repaired in row, row
    assert q.repaired_runs > 0  # the fake model's answers needed repairs: a figure to show
    assert "last 7d" in page and site.client.get("/quality?window=bogus").status_code == 200


def test_a_recorded_plan_run_is_drawn_from_its_own_tasks(site: Site) -> None:
    from turing.planning import ForEach, Plan, PlanStep

    plan = Plan("recount the failed items", (PlanStep("s1", "count_words", {}, ForEach({})),))
    report = site.orch.execute_plan(plan)
    assert report.run_id is not None
    listing = site.client.get("/plans").text
    assert f"/plans/runs/{report.run_id}" in listing and "recount the failed items" in listing
    page = site.client.get(f"/plans/runs/{report.run_id}").text
    assert "<svg" in page and "recount the failed items" in page
    row = page[page.index("<td>s1</td>") :].split("</tr>")[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    # items 2 and 7 had failed before the plan (scripts crash): its tasks are those two
    assert cells == ["2", "0", "2", "0", "0"], row
    assert site.client.get("/plans/runs/999999").status_code == 404
