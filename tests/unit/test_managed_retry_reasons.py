"""A retried model call says why it was retried (timeout vs 500 vs 429), in the error of a
call that gave up and beside the answer of one that got through, and the executor records
it on the call (what `turing runs show` prints from history)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from turing import (
    ActorError,
    Executor,
    FakeModel,
    LLMStep,
    Message,
    ModelRequest,
    ModelResponse,
    Usage,
    Workflow,
)
from turing.actors.managed import ManagedActor, RetriedResponse
from turing.actors.settings import ActorSettings

SETTINGS = ActorSettings("fake", "m1", max_retries=3)


def request(**kw: Any) -> ModelRequest:
    return ModelRequest(messages=(Message("user", "hi"),), **kw)


async def _no_sleep(_: float) -> None:
    return None


def _faults() -> list[Any]:
    return [
        ActorError("no answer after 20.0s (timeout 20s)", transient=True, kind="timeout"),
        ActorError(
            "HTTP 500 from http://x/api/chat: internal error", transient=True, kind="server"
        ),
        ActorError("HTTP 429: slow down", transient=True, retry_after=0.0, kind="rate_limit"),
    ]


def test_a_call_that_got_through_says_why_it_was_retried() -> None:
    ok = ModelResponse('{"a": 1}', Usage(3, 2, 1), "m1")
    actor = ManagedActor(FakeModel([*_faults(), ok]), SETTINGS, sleep=_no_sleep)
    out = asyncio.run(actor.complete(request(temperature=0.7)))
    assert out.text == '{"a": 1}' and out.usage.retries == 3
    assert isinstance(out, RetriedResponse)
    note = out.retried
    assert note.startswith("retried 3 times")
    assert (
        note.index("timeout") < note.index("server: HTTP 500") < note.index("rate_limit: HTTP 429")
    )


def test_a_call_that_gave_up_says_why_each_retry_happened() -> None:
    down = ActorError("connection refused", transient=True, kind="connection")
    faults = [*_faults(), down]
    actor = ManagedActor(FakeModel(faults), SETTINGS, sleep=_no_sleep)
    with pytest.raises(ActorError, match=r"connection refused \(after 3 retries\)") as info:
        asyncio.run(actor.complete(request(temperature=0.7)))
    text = str(info.value)
    for reason in ("timeout: no answer after 20.0s", "server: HTTP 500", "rate_limit: HTTP 429"):
        assert reason in text, text


def test_repeated_reasons_are_counted_not_repeated() -> None:
    faults = [ActorError("HTTP 503: busy", transient=True, kind="server")] * 3
    ok = ModelResponse("{}", Usage(1, 1, 1), "m1")
    actor = ManagedActor(FakeModel([*faults, ok]), SETTINGS, sleep=_no_sleep)
    out = asyncio.run(actor.complete(request(temperature=0.7)))
    assert isinstance(out, RetriedResponse)
    assert out.retried == "retried 3 times: server: HTTP 503: busy (3 times)"


def test_a_first_time_answer_is_a_plain_response() -> None:
    ok = ModelResponse("{}", Usage(1, 1, 1), "m1")
    out = asyncio.run(ManagedActor(FakeModel([ok]), SETTINGS).complete(request(temperature=0.7)))
    assert not isinstance(out, RetriedResponse)


class Out(BaseModel):
    a: int


def test_the_executor_records_the_reasons_on_the_call() -> None:
    ok = ModelResponse('{"a": 1}', Usage(3, 2, 1), "m1")
    actor = ManagedActor(FakeModel([*_faults()[:2], ok]), SETTINGS, sleep=_no_sleep)
    wf = Workflow(
        "w", input={"type": "object"}, output=Out, steps=[LLMStep("s", actor="m", prompt="x")]
    )
    result = Executor({"m": actor}).run_sync(wf, {})
    assert result.ok, result.errors
    [call] = result.attempts
    assert call.error is not None and "server: HTTP 500" in call.error
    assert call.usage.retries == 2
