"""Issue 11, items 7 and 11 (units): the circuit breaker per model host and the context guard.

The breaker: closed -> open after `threshold` consecutive connection failures; while open a
call fails at once (kind circuit_open, transient, retry_after = time to the probe) without
reaching the provider; after the cool-down one probe goes through (the others are still
refused); a probe that connects closes the circuit, one that fails opens it again. Any answer
from the host (an HTTP 500, a read timeout) shows it is reachable. Clocks are injected.

The context guard: a prompt estimated (4 characters a token) beyond the actor's context
window fails before any call (kind context, naming the estimate and the limit) or, with
`on_overflow = "warn"`, goes out with a warning; Ollama without a configured window is
checked against its default and only warned of.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from turing.actors.base import Message, ModelRequest, ModelResponse, Usage
from turing.actors.breaker import Breakers, CircuitBreaker, host_key
from turing.actors.managed import ManagedActor, context_overflow
from turing.actors.settings import ActorSettings
from turing.errors import ActorError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


REFUSED = ActorError("cannot connect to http://h:1: refused", transient=True, kind="connection")


class Host:
    """A provider double: fails to connect while `down`, else answers."""

    identity = "ollama:m@http://h:1"

    def __init__(self, down: bool = True, error: ActorError = REFUSED) -> None:
        self.down = down
        self.error = error
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        if self.down:
            raise self.error
        return ModelResponse('{"ok": true}', Usage(3, 2, 1))


async def no_sleep(_: float) -> None:
    return None


def managed(host: Host, breaker: CircuitBreaker | None, **settings: Any) -> ManagedActor:
    s = ActorSettings.parse("ollama:m", base_url="http://h:1", **settings)
    return ManagedActor(host, s, breaker=breaker, sleep=no_sleep)


def ask(actor: ManagedActor, text: str = "hi", **request: Any) -> ModelResponse:
    return asyncio.run(actor.complete(ModelRequest((Message("user", text),), **request)))


def error_of(actor: ManagedActor, text: str = "hi", **request: Any) -> ActorError:
    with pytest.raises(ActorError) as info:
        ask(actor, text, **request)
    return info.value


def test_host_key_is_host_and_port() -> None:
    assert host_key("http://127.0.0.1:11434") == "127.0.0.1:11434"
    assert host_key("https://API.openai.com/v1") == "api.openai.com:443"
    assert host_key("http://localhost/v1") == "localhost:80"
    breakers = Breakers()
    assert breakers.get("http://h:1/v1") is breakers.get("http://h:1")  # one per host


def test_consecutive_connection_failures_open_the_circuit_and_later_calls_fail_at_once() -> None:
    clock = Clock()
    breaker = Breakers(threshold=3, cooldown_s=30, clock=clock).get("http://h:1")
    host = Host()
    actor = managed(host, breaker, max_retries=0)
    for _ in range(3):
        assert error_of(actor).kind == "connection"
    assert breaker.state == "open"
    for _ in range(37):
        err = error_of(actor)
        assert (err.kind, err.transient) == ("circuit_open", True)
        assert err.retry_after == pytest.approx(30)
    assert host.calls == 3  # 40 calls, 3 reached the network
    assert "circuit open for h:1: 3 consecutive connection failures" in str(err)
    assert "probing again after 30s" in str(err)


def test_the_managed_actor_does_not_retry_into_an_open_circuit() -> None:
    """Retries of one call count too; once open, the call gives up as circuit_open (the task
    is then deferred, not failed) instead of sleeping through more retries."""
    breaker = Breakers(threshold=2, clock=Clock()).get("http://h:1")
    host = Host()
    err = error_of(managed(host, breaker, max_retries=5))
    assert err.kind == "circuit_open"
    assert host.calls == 2
    assert "retried 2 times" in str(err) and "connection: cannot connect" in str(err)


def test_after_the_cool_down_one_probe_goes_and_its_outcome_decides() -> None:
    clock = Clock()
    breaker = Breakers(threshold=1, cooldown_s=10, clock=clock).get("http://h:1")
    host = Host()
    actor = managed(host, breaker, max_retries=0)
    assert error_of(actor).kind == "connection"
    clock.now += 9.9
    assert error_of(actor).kind == "circuit_open"
    clock.now += 0.2  # due: the next call is the probe; it fails, a new cool-down starts
    assert error_of(actor).kind == "connection"
    assert host.calls == 2
    assert error_of(actor).kind == "circuit_open"
    clock.now += 10
    host.down = False  # the host is back: the probe succeeds and the circuit closes
    assert ask(actor).text == '{"ok": true}'
    assert breaker.state == "closed"
    for _ in range(3):
        ask(actor)
    assert host.calls == 6


def test_one_probe_at_a_time_in_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker("h:1", threshold=1, cooldown_s=5, clock=clock)
    breaker.failed(breaker.enter(), REFUSED)
    clock.now += 5
    probe = breaker.enter()
    assert probe.probe and breaker.state == "half-open"
    with pytest.raises(ActorError) as info:
        breaker.enter()  # a second caller while the probe is in flight
    assert info.value.kind == "circuit_open" and "a probe is in flight" in str(info.value)
    breaker.abandoned(probe)  # cancelled: says nothing about the host; the next may probe
    assert breaker.enter().probe


@pytest.mark.parametrize(
    "error",
    [
        ActorError("server error 500", transient=True, kind="server"),
        ActorError("no answer after 1s", transient=True, kind="timeout"),
        ActorError("model x not found", kind="not_found"),
    ],
)
def test_an_answer_of_any_kind_shows_the_host_is_reachable(error: ActorError) -> None:
    breaker = CircuitBreaker("h:1", threshold=2, clock=Clock())
    breaker.failed(breaker.enter(), REFUSED)
    breaker.failed(breaker.enter(), error)  # reached it: the count starts again
    breaker.failed(breaker.enter(), REFUSED)
    assert breaker.state == "closed"


# ------------------------------------------------------------------ context guard
LONG = "word " * 20_000  # 100,000 characters: about 25,000 tokens


def test_a_prompt_beyond_the_context_window_fails_before_any_call() -> None:
    host = Host(down=False)
    actor = managed(host, None, context_tokens=8192, max_tokens=512)
    err = error_of(actor, LONG)
    assert (err.kind, err.transient) == ("context", False)
    assert "about 25000 tokens" in str(err) and "+ 512 for the answer" in str(err)
    assert "8192 tokens" in str(err)
    assert host.calls == 0
    assert ask(actor, "short").text  # what fits goes out


def test_on_overflow_warn_sends_it_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    host = Host(down=False)
    actor = managed(host, None, context_tokens=8192, on_overflow="warn")
    with caplog.at_level(logging.WARNING, logger="turing.actors.managed"):
        ask(actor, LONG)
        ask(actor, LONG)
    assert host.calls == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # said once, not on every call
    assert "prompt too long: about 25000 tokens" in warnings[0]


def test_ollama_without_a_window_is_warned_against_its_default_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = Host(down=False)
    actor = managed(host, None)  # no context_tokens, no num_ctx
    with caplog.at_level(logging.WARNING, logger="turing.actors.managed"):
        ask(actor, LONG)
    assert host.calls == 1
    assert "Ollama's default: set num_ctx or context_tokens" in caplog.text


def test_num_ctx_is_the_window_when_context_tokens_is_not_set() -> None:
    settings = ActorSettings.parse("ollama:m", num_ctx=32768)
    request = ModelRequest((Message("user", LONG),))
    assert settings.context_limit == 32768 and context_overflow(settings, request) is None
    openai = ActorSettings.parse("openai:gpt-4o-mini")
    assert openai.context_limit is None and context_overflow(openai, request) is None
    both = ActorSettings.parse("ollama:m", context_tokens=16384)
    assert both.ollama_num_ctx == 16384  # sent to Ollama as options.num_ctx
