"""Limit specs, scopes, keys and the `[limits]` config model; clear errors naming the spec."""

from __future__ import annotations

import ast
import asyncio
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import turing.store.limits as limit_store
from turing.errors import ConfigError
from turing.limits import (
    Concurrency,
    Limiter,
    LimitKey,
    LimitsConfig,
    LimitSpecError,
    LimitUnsatisfiable,
    Rate,
    Wait,
    parse_concurrency,
    parse_limit,
    parse_rate,
    parse_scope,
    provider_scope,
)
from turing.store.queries import DIALECTS, queries


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("50/s", Rate(50, 1.0)),
        ("10/min", Rate(10, 60.0)),
        ("100/hour", Rate(100, 3600.0)),
        ("2000/day", Rate(2000, 86400.0)),
        ("100000 tokens/min", Rate(100_000, 60.0, "tokens")),
        ("200_000 tokens/5min", Rate(200_000, 300.0, "tokens")),
        ("1 token/s", Rate(1, 1.0, "tokens")),
        ("30 requests/m", Rate(30, 60.0)),
        (" 5 / second ", Rate(5, 1.0)),
        ("40/0.5s", Rate(40, 0.5)),
        ("3/2h", Rate(3, 7200.0)),
        ("50/S", Rate(50, 1.0)),
    ],
)
def test_rate_specs(spec: str, expected: Rate) -> None:
    assert parse_rate(spec) == expected
    assert parse_limit(spec) == expected
    assert parse_rate(str(expected)) == expected  # the canonical text parses back


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("50/fortnight", r"invalid rate limit '50/fortnight': unknown period 'fortnight'"),
        ("50 apples/s", r"invalid rate limit '50 apples/s': unknown unit 'apples'"),
        ("fifty/s", r"invalid rate limit 'fifty/s': expected \"50/s\""),
        ("50/", r"invalid rate limit '50/'"),
        ("-5/s", r"invalid rate limit '-5/s'"),
        ("0/s", r"invalid rate limit '0/s': amount and period must be positive"),
        ("5/0s", r"invalid rate limit '5/0s': amount and period must be positive"),
        ("50 per second", r"invalid rate limit '50 per second'"),
    ],
)
def test_bad_rate_specs_are_named(spec: str, message: str) -> None:
    with pytest.raises(LimitSpecError, match=message):
        parse_rate(spec)


@pytest.mark.parametrize("spec", [4, "4", " 12 "])
def test_concurrency_specs(spec: int | str) -> None:
    limit = parse_concurrency(spec)
    assert isinstance(limit, Concurrency) and limit.slots == int(spec)
    assert parse_limit(spec) == limit


@pytest.mark.parametrize("spec", [0, -1, True, 2.5, "four", "", None])
def test_bad_concurrency_specs_are_named(spec: Any) -> None:
    with pytest.raises(LimitSpecError, match=f"concurrency limit {spec!r}"):
        parse_concurrency(spec)


@pytest.mark.parametrize("spec", ["x", "", 0, 1.5, "4 at once"])
def test_bad_limits_are_named(spec: Any) -> None:
    with pytest.raises(LimitSpecError, match=f"invalid limit {spec!r}"):
        parse_limit(spec)


def test_spec_errors_are_config_and_value_errors() -> None:
    with pytest.raises(ConfigError):
        parse_rate("1/eon")
    with pytest.raises(ValueError, match="eon"):
        parse_rate("1/eon")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("global", "global"),
        (" workflow:job_skills ", "workflow:job_skills"),
        ("actor:gpt-4o.mini", "actor:gpt-4o.mini"),
        ("provider:http://127.0.0.1:11434", "provider:http://127.0.0.1:11434"),
        ("provider:HTTPS://API.OpenAI.com/v1/", "provider:https://api.openai.com"),
    ],
)
def test_scopes(scope: str, expected: str) -> None:
    assert parse_scope(scope) == expected


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("actors:gpt", "unknown limit scope 'actors:gpt': use global, workflow:<name>"),
        ("Global", "unknown limit scope 'Global'"),
        ("gpt", "unknown limit scope 'gpt'"),
        ("actor:", "the actor name must be non-empty"),
        ("workflow:a b", "the workflow name must be non-empty, without spaces"),
        ("provider:ollama", "'provider:ollama': expected the provider's URL"),
        ("provider:ftp://host", "expected the provider's URL"),
    ],
)
def test_bad_scopes_are_named(scope: str, message: str) -> None:
    with pytest.raises(LimitSpecError, match=message):
        parse_scope(scope)


def test_provider_scope_keeps_scheme_host_and_port() -> None:
    assert provider_scope("http://127.0.0.1:11434/") == "provider:http://127.0.0.1:11434"
    assert provider_scope("https://api.openai.com/v1") == "provider:https://api.openai.com"


def test_limit_keys() -> None:
    a = LimitKey.parse("actor:gpt", "500/min")
    assert str(a) == "actor:gpt 500/min"
    assert a.id == "actor:gpt|requests/60s" and a.is_rate and not a.is_tokens
    # a changed amount keeps the record; another period or unit is another limit
    assert LimitKey.parse("actor:gpt", "400/min").id == a.id
    assert LimitKey.parse("actor:gpt", "10/s").id != a.id
    tokens = LimitKey.parse("actor:gpt", "200000 tokens/min")
    assert tokens.id == "actor:gpt|tokens/60s" and tokens.is_tokens
    slots = LimitKey.parse("provider:http://h:1/x", 2)
    assert slots.scope == "provider:http://h:1"
    assert slots.id == "provider:http://h:1|concurrency" and not slots.is_rate
    assert str(slots) == "provider:http://h:1 2 at once"
    with pytest.raises(LimitSpecError, match="unknown limit scope 'actor'"):
        LimitKey.parse("actor", 3)


TOML = """
[limits.concurrency]
global = 64
"workflow:job_skills" = 8
"actor:skills_extractor" = 4
"provider:http://127.0.0.1:11434" = 2

[limits.rate]
global = "50/s"
"actor:gpt" = ["500/min", "200000 tokens/min"]
"provider:https://api.openai.com" = "3000/min"
"workflow:cv_import" = "2000/day"
"""


def _config(text: str = TOML) -> LimitsConfig:
    return LimitsConfig.model_validate(tomllib.loads(text)["limits"])


def test_config_shape() -> None:
    config = _config()
    assert config.concurrency["global"] == 64
    assert config.rate["actor:gpt"] == ["500/min", "200000 tokens/min"]
    assert config.rate["global"] == ["50/s"]
    assert len(config.keys()) == 9
    keys = config.keys_for(
        workflow="job_skills", actor="skills_extractor", provider="http://127.0.0.1:11434/"
    )
    assert {str(k) for k in keys} == {
        "global 64 at once",
        "global 50/s",
        "workflow:job_skills 8 at once",
        "actor:skills_extractor 4 at once",
        "provider:http://127.0.0.1:11434 2 at once",
    }
    gpt = config.keys_for(actor="gpt", provider="https://api.openai.com/v1")
    assert {str(k) for k in gpt} == {
        "global 64 at once",
        "global 50/s",
        "actor:gpt 500/min",
        "actor:gpt 200000 tokens/min",
        "provider:https://api.openai.com 3000/min",
    }
    assert LimitsConfig().keys_for(workflow="w", actor="a") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[limits.rate]\n"actor:gpt" = "500/fortnight"', "'actor:gpt': invalid rate limit"),
        ('[limits.rate]\n"actors:gpt" = "5/s"', "unknown limit scope 'actors:gpt'"),
        ('[limits.rate]\n"actor:gpt" = []', "'actor:gpt': expected a rate"),
        ('[limits.rate]\n"actor:gpt" = 5', "'actor:gpt': expected a rate"),
        ('[limits.rate]\n"actor:g" = ["1 tokens/min", "2 tokens/60s"]', "two tokens limits"),
        ('[limits.concurrency]\n"actor:gpt" = 0', "'actor:gpt': concurrency limit 0"),
        ('[limits.concurrency]\n"actor:gpt" = "many"', "concurrency limit 'many'"),
        (
            '[limits.concurrency]\n"provider:http://h:1" = 1\n"provider:http://H:1/" = 2',
            "the same scope as another key",
        ),
        ("[limits.burst]\nglobal = 1", "Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_key_and_spec(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(text)


def test_wait_wakes_on_release_only_without_request_rates() -> None:
    slot, tokens = LimitKey.parse("global", 1), LimitKey.parse("actor:a", "9 tokens/s")
    rate = LimitKey.parse("actor:a", "9/s")
    assert Wait(0.1, slot, (slot, tokens), "").on_release
    assert not Wait(0.1, slot, (slot, rate), "").on_release


def test_requests_that_can_never_be_granted_fail_at_once() -> None:
    limiter = Limiter(object(), "w")  # type: ignore[arg-type]  # no database is touched
    key = LimitKey.parse("actor:a", "100 tokens/min")
    with pytest.raises(LimitUnsatisfiable, match="actor:a 100 tokens/min: asking 101 tokens"):
        limiter.try_acquire([key], tokens=101)
    with pytest.raises(LimitUnsatisfiable):
        asyncio.run(limiter.acquire([key], tokens=101))
    with pytest.raises(ValueError, match="must not be negative"):
        limiter.try_acquire([key], tokens=-1)
    with pytest.raises(ValueError, match="two different limits for one key"):
        limiter.try_acquire([key, LimitKey.parse("actor:a", "50 tokens/min")])
    with pytest.raises(ValueError, match="positive"):
        Limiter(object(), "w", slot_ttl=0)  # type: ignore[arg-type]


def _query_names_used() -> set[str]:
    """The limiter's named queries: the ones turing/store/limits.py runs."""
    used: set[str] = set()
    for path in [Path(limit_store.__file__)]:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"q", "one", "x", "many"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                used.add(node.args[0].value)
    return used


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_query_the_limiter_uses_exists(dialect: str) -> None:
    used = _query_names_used()
    assert {"limit_lock", "limit_usage", "limit_insert_slot", "limit_heartbeat"} <= used
    assert used <= set(queries(dialect))
    limit_queries = {name for name in queries(dialect) if name.startswith("limit_")}
    assert limit_queries == used  # and none is left unused
