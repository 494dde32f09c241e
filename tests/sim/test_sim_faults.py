"""Each fault kind produces exactly its shape; inapplicable faults fall back to no fault."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from random import Random
from typing import Any

import httpx
import json_repair
import openai
import pytest

from sim.conftest import SKILLS_SCHEMA, FakeTime, MakeSim
from turing import Contract
from turing.repair import repair
from turing.sim import QUALITY_FAULTS, SHAPE_FAULTS, SimConfig, faults
from turing.sim.config import FAULT_KINDS
from turing.sim.engine import Call, Engine

PROMPT = [{"role": "user", "content": "posting_id: 7\nExtract the skills of this posting."}]
CONTRACT = Contract(SKILLS_SCHEMA)
CONTENT_FAULTS = [k for k in FAULT_KINDS if k not in ("http_500", "http_429", "hang")]


def ollama_chat(url: str, schema: Any = SKILLS_SCHEMA, **extra: Any) -> httpx.Response:
    body = {"model": "qwen2.5:7b", "messages": PROMPT, "format": schema, "stream": False}
    return httpx.post(url + "/api/chat", json={**body, **extra}, timeout=10)


@pytest.fixture
def correct(make_sim: MakeSim) -> Any:
    """The answer without faults (same seed and request => same answer)."""
    return json.loads(ollama_chat(make_sim(seed=5).url).json()["message"]["content"])


def faulty(make_sim: MakeSim, kind: str, **overrides: Any) -> tuple[str, dict[str, Any]]:
    sim = make_sim(seed=5, faults={kind: 1.0}, **overrides)
    content = ollama_chat(sim.url).json()["message"]["content"]
    return content, sim.stats()


@pytest.mark.parametrize("kind", CONTENT_FAULTS)
def test_content_fault_is_counted(make_sim: MakeSim, kind: str) -> None:
    _, stats = faulty(make_sim, kind)
    assert stats["faults"][kind] == 1 and stats["faulty"] == 1
    assert stats["faults_not_applicable"] == 0


def plan_content(seed: int, faults: dict[str, float] | None = None) -> str:
    """The content the simulator would answer (the engine alone, no HTTP)."""
    engine = Engine(SimConfig.profile("fast", seed=seed, faults=faults or {}))
    call = Call("ollama", "/api/chat", "qwen2.5:7b", PROMPT, schema=SKILLS_SCHEMA)
    return engine.plan(call).content


def test_engine_matches_http(make_sim: MakeSim, correct: Any) -> None:
    assert json.loads(plan_content(5)) == correct
    assert plan_content(5, {"bare_array": 1.0}) == faulty(make_sim, "bare_array")[0]


def test_malformed_json() -> None:
    seen = set()
    for seed in range(12):
        good = json.loads(plan_content(seed))
        content = plan_content(seed, {"malformed_json": 1.0})
        with pytest.raises(ValueError):
            json.loads(content)
        assert json_repair.loads(content) == good
        if content.endswith((",}", ",]")):
            seen.add("trailing_comma")
        elif content.startswith("{'"):
            seen.add("single_quotes")
        else:
            seen.add("cut_tail")
    assert seen == {"trailing_comma", "single_quotes", "cut_tail"}


def test_fenced_prose(make_sim: MakeSim, correct: Any) -> None:
    content, _ = faulty(make_sim, "fenced_prose")
    before, fence, rest = content.partition("```json\n")
    body, close, after = rest.partition("\n```")
    assert before.strip() and after.strip() and fence and close
    assert json.loads(body) == correct


def test_bare_array(make_sim: MakeSim, correct: Any) -> None:
    content, _ = faulty(make_sim, "bare_array")
    assert json.loads(content) == correct["skills"]


def test_one_element_array(make_sim: MakeSim, correct: Any) -> None:
    content, _ = faulty(make_sim, "one_element_array")
    assert json.loads(content) == [correct]


def test_json_string(make_sim: MakeSim, correct: Any) -> None:
    value = json.loads(faulty(make_sim, "json_string")[0])
    encoded = [
        (path, text)
        for path, text in _leaves(value)
        if isinstance(text, str) and text[:1] in "[{" and json.loads(text) is not None
    ]
    assert len(encoded) == 1
    path, text = encoded[0]
    assert _put(value, path, json.loads(text)) == correct


def test_wrong_enum(make_sim: MakeSim, correct: Any) -> None:
    value = json.loads(faulty(make_sim, "wrong_enum")[0])
    changed = [(p, v) for p, v in _leaves(value) if _get(correct, p) != v]
    assert len(changed) == 1
    path, bad = changed[0]
    assert path[-1] == "importance"
    assert bad.lower() not in ("required", "preferred", "nice_to_have")
    assert not CONTRACT.is_valid(value)


def test_missing_field(make_sim: MakeSim, correct: Any) -> None:
    value = json.loads(faulty(make_sim, "missing_field")[0])
    lost = set(_paths(correct)) - set(_paths(value))
    kept = set(_paths(value)) - set(_paths(correct))
    assert len(lost) >= 1 and not kept
    top = min(lost, key=len)  # the dropped field (and what was inside it)
    assert all(p[: len(top)] == top for p in lost)
    assert not CONTRACT.is_valid(value)


def test_extra_fields(make_sim: MakeSim, correct: Any) -> None:
    value = json.loads(faulty(make_sim, "extra_fields")[0])
    extra = set(value) - set(correct)
    assert 1 <= len(extra) <= 3 and not extra & set(SKILLS_SCHEMA["properties"])
    assert {k: value[k] for k in correct} == correct


def test_empty(make_sim: MakeSim) -> None:
    assert faulty(make_sim, "empty")[0] == ""


def test_ungrounded_is_schema_valid_with_one_invented_value() -> None:
    prompt = PROMPT[0]["content"].lower()
    for seed in range(10):
        good = json.loads(plan_content(seed))
        value = json.loads(plan_content(seed, {"ungrounded": 1.0}))
        assert CONTRACT.is_valid(value)  # no contract can tell
        changed = [(p, v) for p, v in _leaves(value) if _get(good, p) != v]
        assert len(changed) == 1, changed
        path, invented = changed[0]
        assert path[-1] == "name" and invented.lower() not in prompt


def test_ungrounded_invents_the_quote_and_keeps_the_frame() -> None:
    text = {"type": "string", "maxLength": 300}
    schema = {
        "type": "object",
        "properties": {"item_id": {"type": "integer"}, "reasoning": text},
        "required": ["item_id", "reasoning"],
    }
    value = {"item_id": 3, "reasoning": 'Listed under "Requirements": "Python and SQL".'}
    prompt = "Requirements: Python and SQL. Proven track record leading HyperMesh initiatives"
    for seed in range(10):
        out = json.loads(faults.apply("ungrounded", value, schema, Random(seed), prompt=prompt))
        assert out["item_id"] == 3
        before, _, rest = out["reasoning"].partition('"Requirements": "')
        assert before == "Listed under " and rest.endswith('".')
        quote = rest[:-2]
        assert quote != "Python and SQL" and quote.lower() not in prompt.lower()
    # nothing free to invent (ids, enums): not applicable, no fault counted
    flat = {
        "type": "object",
        "properties": {"kind": {"enum": ["a", "b"]}, "n": {"type": "integer"}},
    }
    assert faults.apply("ungrounded", {"kind": "a", "n": 1}, flat, Random(1)) is None


def test_shape_faults_are_fixed_by_deterministic_repair() -> None:
    for kind in sorted(SHAPE_FAULTS):
        for seed in range(10):
            good = plan_content(seed)
            content = plan_content(seed, {kind: 1.0})
            outcome = repair(content, CONTRACT, {"posting_id": 7})
            assert outcome.ok, (kind, content)
            assert outcome.value == json.loads(good), kind


def test_inapplicable_faults_fall_back_to_no_fault(make_sim: MakeSim) -> None:
    flat = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }
    sim = make_sim(faults={"bare_array": 0.5, "json_string": 0.25, "wrong_enum": 0.25})
    for i in range(6):
        r = ollama_chat(sim.url, flat, options={"seed": i})
        assert Contract(flat).is_valid(json.loads(r.json()["message"]["content"]))
    # free text (no format): only `empty` could apply
    plain = make_sim(faults={"fenced_prose": 1.0})
    text = ollama_chat(plain.url, None).json()["message"]["content"]
    assert text.startswith("This is a simulated answer")
    for s in (sim.stats(), plain.stats()):
        assert s["faulty"] == 0 and s["faults_not_applicable"] == s["calls"]


def test_http_500(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"http_500": 1.0})
    r = ollama_chat(sim.url)
    assert r.status_code == 500 and "error" in r.json()
    client = openai.OpenAI(base_url=sim.openai_url, api_key="x", max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o", messages=PROMPT)  # type: ignore[arg-type]
    assert info.value.type == "server_error"
    assert sim.stats()["faults"]["http_500"] == 2


def test_http_429_carries_retry_after(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"http_429": 1.0}, retry_after_s=2.5)
    r = ollama_chat(sim.url)
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.headers["retry-after-ms"] == "2500"
    client = openai.OpenAI(base_url=sim.openai_url, api_key="x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=PROMPT)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.code == "rate_limit_exceeded"


def test_hang_outlasts_the_client_timeout(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"hang": 1.0}, hang_s=3600.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            sim.url + "/api/chat",
            json={"model": "qwen2.5:7b", "messages": PROMPT, "stream": False},
            timeout=0.3,
        )
    client = openai.OpenAI(base_url=sim.openai_url, api_key="x", max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=PROMPT)  # type: ignore[arg-type]
    assert sim.stats()["faults"]["hang"] == 2


def test_stop_cuts_a_hanging_request_short(make_sim: MakeSim) -> None:
    sim = make_sim(faults={"hang": 1.0}, hang_s=3600.0)
    with ThreadPoolExecutor(1) as pool:
        body = {"model": "qwen2.5:7b", "messages": PROMPT, "stream": False}
        url = sim.url + "/api/chat"
        waiting = pool.submit(httpx.post, url, json=body, timeout=None)  # would wait an hour
        for _ in range(1000):  # until the request hangs (at most ~10 s)
            if sim.stats()["faults"]["hang"] == 1:
                break
            time.sleep(0.01)
        assert sim.stop()  # the server is down: it did not wait for the hang
        assert waiting.result(timeout=60).status_code == 499  # cut short, not answered
    assert sim.engine.stats.in_flight == 0


def test_short_hang_then_answers(make_sim: MakeSim) -> None:
    time = FakeTime()
    sim = make_sim(faults={"hang": 1.0}, hang_s=0.2, time=time)
    r = ollama_chat(sim.url)
    assert time.slept == pytest.approx(0.2)  # the hang (the fast profile does not sleep)
    assert CONTRACT.is_valid(json.loads(r.json()["message"]["content"]))


def test_fault_rates_of_the_chaos_profile() -> None:
    chaos = SimConfig.profile("chaos")
    # every kind a contract or a transport can see; ungrounded answers are for checks
    assert set(chaos.faults) == set(FAULT_KINDS) - QUALITY_FAULTS and chaos.fault_rate >= 0.35
    demo = SimConfig.profile("demo")
    assert not QUALITY_FAULTS & set(demo.faults)
    assert 0.12 <= demo.fault_rate <= 0.18
    shape = sum(v for k, v in demo.faults.items() if k in SHAPE_FAULTS)
    assert shape > demo.fault_rate / 2


def test_chaos_is_at_least_30_percent_faulty_across_all_kinds(make_sim: MakeSim) -> None:
    sim = make_sim("chaos", hang_s=0.0, time_scale=0.0)
    codes = []
    with httpx.Client(timeout=10) as client:
        for i in range(300):
            body = {
                "model": "qwen2.5:7b",
                "messages": [{"role": "user", "content": f"posting_id: {i}\nskills please"}],
                "format": SKILLS_SCHEMA,
                "stream": False,
            }
            codes.append(client.post(sim.url + "/api/chat", json=body).status_code)
    stats = sim.stats()
    assert stats["faulty"] / stats["calls"] >= 0.30
    assert all(stats["faults"][k] > 0 for k in set(FAULT_KINDS) - QUALITY_FAULTS)
    assert codes.count(500) == stats["faults"]["http_500"]
    assert codes.count(429) == stats["faults"]["http_429"]


# -- helpers: JSON paths ----------------------------------------------------------------


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        out += [p for k, v in value.items() for p in _paths(v, (*path, k))]
    elif isinstance(value, list):
        out += [p for i, v in enumerate(value) for p in _paths(v, (*path, i))]
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    _get(value, path[:-1])[path[-1]] = new
    return value
