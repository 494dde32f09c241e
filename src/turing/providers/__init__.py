"""Model providers: one module each, imported lazily so a missing client names its extra.

`create(settings)` returns the Actor for an `ActorSettings`. Each provider module exposes
`create(settings: ActorSettings) -> Actor`.
"""

from __future__ import annotations

import importlib

from turing.actors.base import Actor
from turing.actors.settings import ActorSettings
from turing.errors import ConfigError

# provider name -> (module, the extra that installs its client)
PROVIDERS: dict[str, tuple[str, str]] = {
    "ollama": ("turing.providers.ollama", "ollama"),
    "openai": ("turing.providers.openai", "openai"),
    "anthropic": ("turing.providers.anthropic", "anthropic"),
}


def create(settings: ActorSettings) -> Actor:
    try:
        module_name, extra = PROVIDERS[settings.provider]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"unknown provider {settings.provider!r} in actor {settings.name!r} (known: {known})"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'turing[{extra}]'"
        raise ConfigError(
            f"provider {settings.provider!r} needs its client: {hint} ({exc})"
        ) from exc
    actor: Actor = module.create(settings)
    return actor
