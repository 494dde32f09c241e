"""The response cache: identical deterministic requests are answered from the database.

A request is cacheable when its temperature is 0 or a seed is set: the same actor, model,
messages, parameters and schema should then give the same answer, so paying again buys
nothing. Keys are sha256 over all of those; hits are counted and cost nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from turing._json import digest
from turing.actors.base import ModelRequest


class ResponseCache(Protocol):
    def get(self, key: str, *, count_hit: bool = True) -> dict[str, Any] | None: ...
    def put(
        self, key: str, *, actor: str, model: str, text: str, input_tokens: int, output_tokens: int
    ) -> None: ...


def cacheable(request: ModelRequest) -> bool:
    return request.temperature == 0 or request.seed is not None


def cache_key(identity: str, model: str, request: ModelRequest) -> str:
    return digest(
        {
            "actor": identity,
            "model": model,
            "messages": [m.as_dict() for m in request.messages],
            "temperature": request.temperature,
            "seed": request.seed,
            "max_tokens": request.max_tokens,
            "schema": request.schema,
        }
    )


class StoreCache:
    """The cache in Turing's database (table `turing_cache`)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get(self, key: str, *, count_hit: bool = True) -> dict[str, Any] | None:
        row = self.store.cache_get(key) if count_hit else self.store.cache_peek(key)
        return dict(row) if row is not None else None

    def put(
        self, key: str, *, actor: str, model: str, text: str, input_tokens: int, output_tokens: int
    ) -> None:
        self.store.cache_put(
            key,
            actor=actor,
            model=model,
            response=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )


class MemoryCache:
    """An in-process cache, for tests and for `turing exec` without a database."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.hits = 0

    def get(self, key: str, *, count_hit: bool = True) -> dict[str, Any] | None:
        row = self.rows.get(key)
        if row is not None and count_hit:
            self.hits += 1
        return row

    def put(
        self, key: str, *, actor: str, model: str, text: str, input_tokens: int, output_tokens: int
    ) -> None:
        self.rows.setdefault(
            key, {"response": text, "input_tokens": input_tokens, "output_tokens": output_tokens}
        )
