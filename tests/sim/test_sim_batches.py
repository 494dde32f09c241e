"""The simulator's batch protocols: OpenAI's files and batches, Anthropic's message batches.
Statuses follow the injected clock (no waiting), each request is answered as the same
synchronous call would be (same responder, same faults), transport faults become that
request's error, expiry and cancel keep what was answered by then."""

from __future__ import annotations

import json
from typing import Any

import httpx

from sim.conftest import SKILLS_SCHEMA, FakeTime, MakeSim
from turing.sim import Simulator

FORMAT = {"type": "json_schema", "json_schema": {"name": "skills", "schema": SKILLS_SCHEMA}}


def body(n: int) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"Extract skills.\nposting_id: {n}"}],
        "response_format": FORMAT,
    }


def lines(n: int) -> bytes:
    return "\n".join(
        json.dumps(
            {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i)}
        )
        for i in range(n)
    ).encode()


def openai_batch(sim: Simulator, n: int = 4, data: bytes | None = None) -> dict[str, Any]:
    upload = httpx.post(
        f"{sim.openai_url}/files",
        files={"file": ("in.jsonl", data if data is not None else lines(n))},
        data={"purpose": "batch"},
    )
    assert upload.status_code == 200, upload.text
    created = httpx.post(
        f"{sim.openai_url}/batches",
        json={
            "input_file_id": upload.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"turing_key": "k1"},
        },
    )
    assert created.status_code == 200, created.text
    return dict(created.json())


def get(sim: Simulator, batch_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{sim.openai_url}/batches/{batch_id}").json())


def file_lines(sim: Simulator, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    text = httpx.get(f"{sim.openai_url}/files/{file_id}/content").text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_an_openai_batch_goes_from_validating_to_completed_on_the_clock(make_sim: MakeSim) -> None:
    time = FakeTime()
    sim = make_sim(time=time, batch_turnaround_s=100.0)
    batch = openai_batch(sim)
    assert batch["status"] == "validating" and batch["metadata"] == {"turing_key": "k1"}
    assert get(sim, batch["id"])["status"] == "in_progress"
    time.now += 100
    done = get(sim, batch["id"])
    assert done["status"] == "completed" and done["error_file_id"] is None
    assert done["request_counts"] == {"total": 4, "completed": 4, "failed": 0}
    out = file_lines(sim, done["output_file_id"])
    assert sorted(line["custom_id"] for line in out) == ["r0", "r1", "r2", "r3"]
    for line in out:
        assert line["response"]["status_code"] == 200
        answer = json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        assert set(answer) == {"posting_id", "skills"}
    listed = httpx.get(f"{sim.openai_url}/batches", params={"limit": 10}).json()
    assert [b["id"] for b in listed["data"]] == [batch["id"]]
    assert sim.stats()["calls_by_endpoint"] == {"/v1/batches": 4}


def test_each_request_is_answered_as_the_same_synchronous_call(sim: Simulator) -> None:
    batch = openai_batch(sim, 3)
    out = file_lines(sim, get(sim, batch["id"])["output_file_id"])
    by_id = {
        line["custom_id"]: line["response"]["body"]["choices"][0]["message"]["content"]
        for line in out
    }
    for i in range(3):
        sync = httpx.post(f"{sim.openai_url}/chat/completions", json=body(i)).json()
        assert sync["choices"][0]["message"]["content"] == by_id[f"r{i}"]


def test_transport_faults_become_per_request_errors(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"http_500": 0.5}, seed=11)
    done = get(sim, openai_batch(sim, 20)["id"])
    counts = done["request_counts"]
    assert done["status"] == "completed" and counts["failed"] > 0 and counts["completed"] > 0
    errors = file_lines(sim, done["error_file_id"])
    assert len(errors) == counts["failed"]
    assert {e["response"]["status_code"] for e in errors} == {500}
    assert len(file_lines(sim, done["output_file_id"])) == counts["completed"]


def test_an_expired_batch_answers_only_part(make_sim: MakeSim) -> None:
    sim = make_sim(batch_expire_fraction=0.5)
    done = get(sim, openai_batch(sim, 6)["id"])
    assert done["status"] == "expired"
    assert [line["custom_id"] for line in file_lines(sim, done["output_file_id"])] == [
        "r0",
        "r1",
        "r2",
    ]
    errors = file_lines(sim, done["error_file_id"])
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and len(errors) == 3


def test_a_cancelled_batch_keeps_what_was_answered(make_sim: MakeSim) -> None:
    time = FakeTime()
    sim = make_sim(time=time, batch_turnaround_s=100.0)
    batch = openai_batch(sim, 4)
    time.now += 50
    cancelling = httpx.post(f"{sim.openai_url}/batches/{batch['id']}/cancel").json()
    assert cancelling["status"] in ("cancelling", "cancelled")
    done = get(sim, batch["id"])
    assert done["status"] == "cancelled"
    assert len(file_lines(sim, done["output_file_id"])) == 2
    errors = file_lines(sim, done["error_file_id"])
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}


def test_an_unreadable_input_file_fails_the_batch(sim: Simulator) -> None:
    batch = openai_batch(sim, data=b"not json\n")
    assert batch["status"] == "failed"
    assert "not valid batch JSONL" in batch["errors"]["data"][0]["message"]
    assert httpx.get(f"{sim.openai_url}/files/file-nope/content").status_code == 404
    refused = httpx.post(
        f"{sim.openai_url}/batches",
        json={
            "input_file_id": "file-nope",
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert refused.status_code == 400


def anthropic_batch(sim: Simulator, n: int) -> dict[str, Any]:
    tool = {"name": "skills", "description": "answer", "input_schema": SKILLS_SCHEMA}
    requests = [
        {
            "custom_id": f"r{i}",
            "params": {
                "model": "gpt-4o-mini",
                "max_tokens": 1024,
                "tools": [tool],
                "tool_choice": {"type": "tool", "name": "skills"},
                "messages": [{"role": "user", "content": f"Extract skills.\nposting_id: {i}"}],
            },
        }
        for i in range(n)
    ]
    created = httpx.post(f"{sim.url}/v1/messages/batches", json={"requests": requests})
    assert created.status_code == 200, created.text
    return dict(created.json())


def test_an_anthropic_batch_ends_with_each_kind_of_result(make_sim: MakeSim) -> None:
    time = FakeTime()
    sim = make_sim(
        time=time,
        batch_turnaround_s=100.0,
        faults={"http_500": 0.3},
        seed=5,
        batch_expire_fraction=0.75,
    )
    batch = anthropic_batch(sim, 12)
    assert batch["processing_status"] == "in_progress" and batch["results_url"] is None
    early = httpx.get(f"{sim.url}/v1/messages/batches/{batch['id']}/results")
    assert early.status_code == 400
    time.now += 100
    done = httpx.get(f"{sim.url}/v1/messages/batches/{batch['id']}").json()
    assert done["processing_status"] == "ended" and done["results_url"].endswith("/results")
    counts = done["request_counts"]
    assert counts["expired"] == 3 and counts["succeeded"] + counts["errored"] == 9
    assert counts["errored"] > 0
    got = httpx.get(done["results_url"]).text.splitlines()
    kinds: dict[str, int] = {}
    for line in map(json.loads, got):
        result = line["result"]
        kinds[result["type"]] = kinds.get(result["type"], 0) + 1
        if result["type"] == "succeeded":
            [block] = result["message"]["content"]
            assert block["type"] == "tool_use" and set(block["input"]) == {"posting_id", "skills"}
    assert kinds == {"succeeded": counts["succeeded"], "errored": counts["errored"], "expired": 3}


def test_an_anthropic_batch_can_be_cancelled(make_sim: MakeSim) -> None:
    time = FakeTime()
    sim = make_sim(time=time, batch_turnaround_s=100.0)
    batch = anthropic_batch(sim, 4)
    time.now += 25
    cancelling = httpx.post(f"{sim.url}/v1/messages/batches/{batch['id']}/cancel").json()
    assert cancelling["cancel_initiated_at"] is not None
    done = httpx.get(f"{sim.url}/v1/messages/batches/{batch['id']}").json()
    assert done["processing_status"] == "ended"
    assert done["request_counts"]["succeeded"] == 1 and done["request_counts"]["canceled"] == 3
    missing = httpx.get(f"{sim.url}/v1/messages/batches/msgbatch_nope")
    assert missing.status_code == 404
