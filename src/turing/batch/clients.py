"""Which batch client speaks for an actor: the provider modules import the protocol, this
module imports both, so the protocol never imports a provider."""

from __future__ import annotations

from typing import Any

from turing.batch.protocol import BatchClient
from turing.errors import ActorError

PROVIDERS = ("openai", "anthropic")


def client_for(actor: Any) -> BatchClient:
    """The batch client of a provider actor (a `ManagedActor` around an OpenAI or
    Anthropic actor); `ActorError` for any other."""
    inner = actor  # the provider actor, under the managed and any other wrappers
    while not hasattr(inner, "_clients") and hasattr(inner, "inner"):
        inner = inner.inner
    provider = getattr(getattr(actor, "settings", None), "provider", None)
    if provider == "openai":
        from turing.providers.openai_batch import OpenAIBatches

        return OpenAIBatches(inner)
    if provider == "anthropic":
        from turing.providers.anthropic_batch import AnthropicBatches

        return AnthropicBatches(inner)
    raise ActorError(
        f"actor {getattr(actor, 'identity', actor)!r}: provider batches exist for "
        f"{' and '.join(PROVIDERS)} only",
        kind="config",
    )
