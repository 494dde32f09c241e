"""Every endpoint through the official clients (ollama, openai) and raw httpx for shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import ollama
import openai
import pytest

from sim.conftest import SKILLS_SCHEMA, MakeSim
from turing import Contract
from turing.sim import Simulator

PROMPT = [
    {"role": "user", "content": "Extract the skills.\n\nposting_id: 12\nTitle: Data engineer"}
]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def oai(sim: Simulator, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.openai_url, api_key="x", max_retries=0, **kw)


def json_schema_format(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": schema, "strict": strict},
    }


# -- Ollama ---------------------------------------------------------------------------------


def test_ollama_chat_with_schema_returns_valid_json_and_usage(sim: Simulator) -> None:
    async def go() -> Any:
        client = ollama.AsyncClient(host=sim.url)
        return await client.chat(
            model="qwen2.5:7b",
            messages=PROMPT,
            format=SKILLS_SCHEMA,
            options={"temperature": 0, "seed": 3},
            keep_alive="5m",
        )

    resp = run(go())
    value = json.loads(resp.message.content)
    assert Contract(SKILLS_SCHEMA).is_valid(value)
    assert value["posting_id"] == 12  # copied from the "posting_id: 12" prompt line
    assert resp.done and resp.done_reason == "stop" and resp.message.role == "assistant"
    assert resp.model == "qwen2.5:7b"
    assert resp.prompt_eval_count == sum((len(m["content"]) + 3) // 4 for m in PROMPT)
    assert resp.eval_count == (len(resp.message.content) + 3) // 4
    assert resp.load_duration == 500_000_000  # the first call loads the model (swap_s 0.5)
    assert (
        resp.total_duration == resp.load_duration + resp.prompt_eval_duration + resp.eval_duration
    )
    assert resp.eval_duration and resp.eval_duration > 0


def test_ollama_chat_stream_ndjson(sim: Simulator) -> None:
    async def go() -> list[Any]:
        client = ollama.AsyncClient(host=sim.url)
        stream = await client.chat(
            model="qwen2.5:7b", messages=PROMPT, format=SKILLS_SCHEMA, stream=True
        )
        return [part async for part in stream]

    parts = run(go())
    assert len(parts) > 2
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    text = "".join(p.message.content or "" for p in parts)
    assert Contract(SKILLS_SCHEMA).is_valid(json.loads(text))
    final = parts[-1]
    assert final.done_reason == "stop" and final.eval_count == (len(text) + 3) // 4
    assert final.prompt_eval_count and final.total_duration

    # raw: NDJSON, one object a line
    with httpx.stream(
        "POST",
        sim.url + "/api/chat",
        json={"model": "qwen2.5:7b", "messages": PROMPT, "format": "json"},  # stream defaults on
    ) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1]["done"] is True and "eval_count" in lines[-1]
    assert set(lines[0]) == {"model", "created_at", "message", "done"}


def test_ollama_generate_plain_and_stream(sim: Simulator) -> None:
    async def go() -> tuple[Any, list[Any]]:
        client = ollama.AsyncClient(host=sim.url)
        one = await client.generate(
            model="llama3.1:8b", prompt="posting_id: 5\nhello", system="be brief", format="json"
        )
        parts = [
            p
            async for p in await client.generate(model="llama3.1:8b", prompt="Say hi", stream=True)
        ]
        return one, parts

    one, parts = run(go())
    assert json.loads(one.response) == {"posting_id": 5}  # json mode: prompt values
    assert one.done and one.context and one.prompt_eval_count and one.eval_count
    assert parts[-1].done and "".join(p.response for p in parts).startswith("This is a simulated")


def test_ollama_tags_show_ps_version(make_sim: MakeSim) -> None:
    sim = make_sim(known_models=("qwen2.5:7b", "llama3"))

    async def go() -> tuple[Any, Any, Any]:
        client = ollama.AsyncClient(host=sim.url)
        tags = await client.list()
        shown = await client.show("qwen2.5:7b")
        await client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
        return tags, shown, await client.ps()

    tags, shown, ps = run(go())
    assert [m.model for m in tags.models] == ["qwen2.5:7b", "llama3"]
    assert tags.models[0].details.parameter_size == "7B" and tags.models[0].size
    assert shown.details.family == "qwen" and shown.modelinfo and shown.capabilities
    assert [m.model for m in ps.models] == ["llama3"]
    assert httpx.get(sim.url + "/api/version").json()["version"]
    assert httpx.get(sim.url + "/").text == "Ollama is running"
    # Ollama naming: "llama3" is "llama3:latest"
    r = httpx.post(sim.url + "/api/show", json={"model": "llama3:latest"})
    assert r.status_code == 200


def test_ollama_unknown_model_is_a_404_like_ollama(sim: Simulator) -> None:
    async def go() -> None:
        await ollama.AsyncClient(host=sim.url).chat(
            model="nope:1b", messages=[{"role": "user", "content": "hi"}]
        )

    with pytest.raises(ollama.ResponseError) as info:
        run(go())
    assert info.value.status_code == 404
    assert info.value.error == 'model "nope:1b" not found, try pulling it first'
    raw = httpx.post(sim.url + "/api/show", json={"model": "nope:1b"})
    assert raw.status_code == 404 and "not found" in raw.json()["error"]
    assert sim.stats()["errors"]["model_not_found"] == 2
    assert sim.stats()["calls"] == 0


def test_ollama_bad_requests(sim: Simulator) -> None:
    r = httpx.post(sim.url + "/api/chat", json={"messages": []})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}
    r = httpx.post(
        sim.url + "/api/chat",
        json={"model": "qwen2.5:7b", "messages": PROMPT, "format": "yaml", "stream": False},
    )
    assert r.status_code == 400 and "invalid format" in r.json()["error"]
    r = httpx.post(sim.url + "/api/chat", content=b"{nope")
    assert r.status_code == 400 and "error" in r.json()


def test_ollama_num_predict_cuts_the_answer(sim: Simulator) -> None:
    body = {
        "model": "qwen2.5:7b",
        "messages": PROMPT,
        "format": SKILLS_SCHEMA,
        "options": {"num_predict": 5},
        "stream": False,
    }
    out = httpx.post(sim.url + "/api/chat", json=body).json()
    assert out["done_reason"] == "length" and out["eval_count"] == 5
    assert len(out["message"]["content"]) == 20


def test_ollama_empty_messages_load_and_keep_alive_zero_unloads(sim: Simulator) -> None:
    url = sim.url + "/api/chat"
    loaded = httpx.post(url, json={"model": "qwen2.5:3b", "messages": []}).json()
    assert loaded["done_reason"] == "load" and loaded["done"] is True
    assert sim.stats()["resident"] == ["qwen2.5:3b"] and sim.stats()["swaps"] == 1
    gone = httpx.post(url, json={"model": "qwen2.5:3b", "messages": [], "keep_alive": 0}).json()
    assert gone["done_reason"] == "unload" and sim.stats()["resident"] == []
    body = {"model": "qwen2.5:3b", "messages": PROMPT, "keep_alive": "0s", "stream": False}
    assert httpx.post(url, json=body).json()["load_duration"] > 0
    stats = sim.stats()
    assert stats["resident"] == [] and stats["unloads"] == 2 and stats["swaps"] == 2


# -- OpenAI ---------------------------------------------------------------------------------


def test_openai_chat_json_schema_and_usage(sim: Simulator) -> None:
    async def go() -> Any:
        return await oai(sim).chat.completions.create(
            model="gpt-4o-mini",
            messages=PROMPT,
            response_format=json_schema_format(SKILLS_SCHEMA),
            temperature=0,
            seed=1,
        )

    resp = run(go())
    choice = resp.choices[0]
    value = json.loads(choice.message.content)
    assert Contract(SKILLS_SCHEMA).is_valid(value) and value["posting_id"] == 12
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert resp.object == "chat.completion" and resp.id.startswith("chatcmpl-")
    assert resp.usage is not None
    assert resp.usage.completion_tokens == (len(choice.message.content) + 3) // 4
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_openai_stream_sse_with_usage(sim: Simulator) -> None:
    async def go() -> list[Any]:
        stream = await oai(sim).chat.completions.create(
            model="gpt-4o-mini",
            messages=PROMPT,
            response_format=json_schema_format(SKILLS_SCHEMA),
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = run(go())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert Contract(SKILLS_SCHEMA).is_valid(json.loads(text))
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == (len(text) + 3) // 4

    with httpx.stream(
        "POST",
        sim.openai_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": PROMPT, "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_openai_json_object_mode(sim: Simulator) -> None:
    schema_text = json.dumps(SKILLS_SCHEMA)
    messages = [
        {"role": "system", "content": f"Answer in JSON matching this schema: {schema_text}"},
        *PROMPT,
    ]

    async def go() -> Any:
        return await oai(sim).chat.completions.create(
            model="gpt-4o", messages=messages, response_format={"type": "json_object"}
        )

    value = json.loads(run(go()).choices[0].message.content)
    assert Contract(SKILLS_SCHEMA).is_valid(value)  # the schema quoted in the prompt is used

    async def no_json_word() -> Any:
        return await oai(sim).chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )

    with pytest.raises(openai.BadRequestError) as info:
        run(no_json_word())
    assert "must contain the word 'json'" in info.value.message


def test_openai_strict_schema_rules(sim: Simulator) -> None:
    loose = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }

    async def go(schema: dict[str, Any], strict: bool) -> Any:
        return await oai(sim).chat.completions.create(
            model="gpt-4o-mini", messages=PROMPT, response_format=json_schema_format(schema, strict)
        )

    with pytest.raises(openai.BadRequestError) as info:
        run(go(loose, True))
    assert "'required' is required" in info.value.message and "Missing 'b'" in info.value.message
    assert info.value.param == "response_format"
    no_extra = {**loose, "required": ["a", "b"]}
    del no_extra["additionalProperties"]
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        run(go(no_extra, True))
    assert Contract(loose).is_valid(json.loads(run(go(loose, False)).choices[0].message.content))


def test_openai_models_and_unknown_model(make_sim: MakeSim) -> None:
    sim = make_sim(known_models=("gpt-4o-mini",))

    async def go() -> Any:
        client = oai(sim)
        listed = await client.models.list()
        one = await client.models.retrieve("gpt-4o-mini")
        return listed, one

    listed, one = run(go())
    assert [m.id for m in listed.data] == ["gpt-4o-mini"] and one.object == "model"

    async def unknown() -> Any:
        return await oai(sim).chat.completions.create(model="gpt-9", messages=PROMPT)

    with pytest.raises(openai.NotFoundError) as info:
        run(unknown())
    assert info.value.status_code == 404 and info.value.code == "model_not_found"
    assert info.value.type == "invalid_request_error" and "gpt-9" in info.value.message


def test_openai_api_key_is_checked_when_set(make_sim: MakeSim) -> None:
    sim = make_sim(api_key="sk-sim-secret-1234")

    async def call(key: str) -> Any:
        client = openai.AsyncOpenAI(base_url=sim.openai_url, api_key=key, max_retries=0)
        return await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)

    with pytest.raises(openai.AuthenticationError) as info:
        run(call("sk-wrong-key-9999"))
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert "sk-wrong-key-9999" not in info.value.message
    assert run(call("sk-sim-secret-1234")).choices[0].message.content
    r = httpx.get(sim.openai_url + "/models")
    assert r.status_code == 401 and "didn't provide an API key" in r.json()["error"]["message"]
    assert httpx.get(sim.url + "/api/tags").status_code == 200  # Ollama has no keys
    assert sim.stats()["errors"]["unauthorized"] == 2


# -- simulator ------------------------------------------------------------------------------


def test_stats_and_reset(sim: Simulator) -> None:
    for _ in range(2):
        httpx.post(
            sim.url + "/api/chat",
            json={"model": "qwen2.5:7b", "messages": PROMPT, "stream": False},
        )
    httpx.post(sim.openai_url + "/chat/completions", json={"model": "gpt-4o", "messages": PROMPT})
    stats = httpx.get(sim.url + "/sim/stats").json()
    assert stats == sim.stats()
    assert stats["calls"] == 3
    assert stats["calls_by_model"] == {"gpt-4o": 1, "qwen2.5:7b": 2}
    assert stats["calls_by_endpoint"] == {"/api/chat": 2, "/v1/chat/completions": 1}
    assert stats["swaps"] == 2 and stats["in_flight"] == 0 and stats["faulty"] == 0
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] > 0
    assert set(stats["faults"]) >= {"http_500", "hang", "empty"}
    after = httpx.post(sim.url + "/sim/reset").json()
    assert after["calls"] == 0 and after["swaps"] == 0 and after["resident"] == []
    sim.reset()
    assert sim.stats()["calls"] == 0
