"""Actor settings: what `provider:model` strings and `[actors.NAME]` tables in turing.toml
resolve to. Providers receive one `ActorSettings` and nothing else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from turing.errors import ConfigError

# Ollama's context window when neither num_ctx nor a Modelfile says otherwise (4096 tokens
# in recent versions, 2048 in older ones): a longer prompt is cut silently, so it is warned of.
OLLAMA_DEFAULT_CONTEXT = 4096

# How an OpenAI-compatible request asks for JSON, strongest first ("auto" negotiates):
# json_schema         response_format json_schema (strict when the schema allows it)
# json_object_schema  response_format {"type": "json_object", "schema": ...} (llama.cpp,
#                     llama-cpp-python: decoding constrained to the schema), schema in prompt
# json_object         JSON mode, the schema spelled out in the system message
# prompt              no response_format: the schema in the system message, answer repaired
STRUCTURED_MODES: tuple[str, ...] = ("json_schema", "json_object_schema", "json_object", "prompt")

# Where each provider listens when no base_url is given.
DEFAULT_BASE_URLS = {
    "ollama": "http://127.0.0.1:11434",
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


@dataclass(frozen=True)
class ActorSettings:
    """One model behind one provider, with everything needed to call and to bill it.

    `api_key_env` names the environment variable holding the key; the key itself is read
    only when a client is built and never stored, logged or put in an error message.
    `temperature`, `seed`, `timeout` and `max_tokens` override the step's values when set.
    `context_tokens` is the model's context window: a prompt (estimated, plus `max_tokens`)
    that does not fit fails the call (`on_overflow = "fail"`, kind `context`) or is logged
    (`"warn"`); for Ollama it is sent as `options.num_ctx` too (unless `num_ctx` is set).
    Prices are per million tokens. `structured` is the OpenAI-compatible output mode (see
    `STRUCTURED_MODES`): "auto" negotiates it per server and model (the strongest the server
    takes, see `turing.providers.openai`); any other value is sent as it is, never changed.
    `concurrency = "adaptive"` shares an AIMD limit per host among the actors that call it
    (see `turing.actors.adaptive`), `max_concurrency` its ceiling; "fixed" (default): only
    `max_concurrency`.
    Ollama's `num_ctx`, `keep_alive` and `options` (any Ollama option, e.g. top_k) are sent
    with every call; `extra_body` is merged into an OpenAI-compatible request's JSON body
    (server-specific knobs: vLLM's guided decoding, llama.cpp's grammar, top_k ...).
    """

    provider: str
    model: str
    name: str = ""
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    seed: int | None = None
    timeout: float | None = None
    max_tokens: int | None = None
    price_input: float = 0.0
    price_output: float = 0.0
    max_concurrency: int | None = None
    max_retries: int = 3
    structured: str = "auto"
    num_ctx: int | None = None
    keep_alive: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    context_tokens: int | None = None
    on_overflow: str = "fail"
    concurrency: str = "fixed"
    # provider batches (turing.batch; OpenAI and Anthropic): "off", "auto" (once
    # `batch_min_tasks` are pending or the oldest waited `batch_max_wait` seconds) or "on"
    batch: str = "off"
    batch_min_tasks: int = 100
    batch_max_wait: float = 3600.0
    batch_max_tasks: int = 10_000
    batch_poll: float = 60.0
    batch_completion_window: str = "24h"
    batch_reask: str = "batch"  # "batch": into the next batch; "sync": asked at once
    batch_reask_deadline: float | None = None  # after this long in batches: re-asks sync
    batch_price_factor: float = 0.5  # the batch rate: this times the actor's prices

    @classmethod
    def parse(cls, spec: str, **overrides: Any) -> ActorSettings:
        """`ollama:qwen2.5:7b` -> provider "ollama", model "qwen2.5:7b" (split at the 1st colon)."""
        provider, sep, model = spec.partition(":")
        if not sep or not provider or not model:
            raise ConfigError(
                f"actor spec {spec!r} must look like provider:model, e.g. ollama:qwen2.5:7b"
            )
        return cls(provider=provider, model=model, name=overrides.pop("name", spec), **overrides)

    @property
    def url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS.get(self.provider, "")).rstrip("/")

    @property
    def context_limit(self) -> int | None:
        """The context window a prompt (plus `max_tokens`) must fit: `context_tokens`, else
        Ollama's `num_ctx`, else Ollama's default (assumed), else None (not checked)."""
        if self.context_tokens is not None:
            return self.context_tokens
        if self.num_ctx is not None:
            return self.num_ctx
        return OLLAMA_DEFAULT_CONTEXT if self.provider == "ollama" else None

    @property
    def context_assumed(self) -> bool:
        """The limit is Ollama's default, not configured: an overflow is only warned of."""
        return self.context_tokens is None and self.num_ctx is None and self.provider == "ollama"

    @property
    def ollama_num_ctx(self) -> int | None:
        """`options.num_ctx` for Ollama: `num_ctx`, else `context_tokens`."""
        return self.num_ctx if self.num_ctx is not None else self.context_tokens

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_input + output_tokens * self.price_output) / 1_000_000

    def batch_cost(self, input_tokens: int, output_tokens: int) -> float:
        """What a call answered through a provider batch costs (the batch rate)."""
        return self.cost(input_tokens, output_tokens) * self.batch_price_factor

    def with_(self, **changes: Any) -> ActorSettings:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """Settings that change behaviour, for fingerprints (never the key)."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.url,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
            "structured": self.structured,
            "num_ctx": self.ollama_num_ctx if self.provider == "ollama" else self.num_ctx,
            "options": self.options,
            **({"extra_body": self.extra_body} if self.extra_body else {}),
        }
