"""What the OpenAI and Anthropic providers share: both official clients come from the same
generator (Stainless), with the same constructor, the same error classes and `close()`.

A subclass names its SDK module and client class, its key variable and official host, and
the text of a 404 for a model; it keeps its own request and response handling.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import pydantic

from turing.actors.settings import ActorSettings
from turing.errors import ActorError
from turing.providers import _errors
from turing.providers._common import PerLoop, identity, key_env

R = TypeVar("R")


class SDKActor:
    sdk: ClassVar[Any]  # the module: openai or anthropic
    client_class: ClassVar[Any]  # openai.AsyncOpenAI or anthropic.AsyncAnthropic
    default_key_env: ClassVar[str]
    official_host: ClassVar[str]

    def __init__(self, settings: ActorSettings) -> None:
        self.settings = settings
        self.key_env = key_env(settings, self.default_key_env, self.official_host)
        self._clients: PerLoop[Any] = PerLoop(self._new_client, _close)

    @property
    def identity(self) -> str:
        return identity(self.settings)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.identity!r})"

    def _key(self) -> str | None:
        return os.environ.get(self.key_env) if self.key_env else None

    def _new_client(self) -> Any:
        # an explicit key, never the client's own credential discovery: a key is sent only
        # where the settings say; the client never retries (retrying is Turing's job)
        return self.client_class(
            base_url=self.settings.url,
            api_key=self._key() or "not-needed",
            timeout=self.settings.timeout if self.settings.timeout is not None else 60.0,
            max_retries=0,
        )

    def _read(self, read: Callable[[Any], R], answer: Any) -> R:
        """`read(answer)`, with any surprise in the answer's shape as a bad_response error."""
        try:
            return read(answer)
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise _errors.bad_response(self.settings.url, detail, (self._key(),)) from None

    def not_found(self) -> str:
        """The message for a 404: the model is not served there."""
        raise NotImplementedError

    def _error(self, exc: Exception, timeout: float) -> ActorError:
        sdk, url, secrets = self.sdk, self.settings.url, (self._key(),)
        if isinstance(exc, ActorError):
            return exc
        if isinstance(exc, sdk.APITimeoutError):
            if type(exc.__cause__).__name__ == "ConnectTimeout":  # httpx's: never answered
                return _errors.connection_error(url, f"connect timeout after {timeout:g}s")
            return _errors.timeout_error(url, timeout)
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__
            detail = _errors.describe(cause) if cause is not None else exc.message
            return _errors.connection_error(url, detail, secrets)
        if isinstance(exc, sdk.APIStatusError):
            return _errors.status_error(
                exc.status_code,
                message=_errors.server_message(exc.body, exc.message),
                url=url,
                not_found=self.not_found(),
                key_env=self.key_env,
                secrets=secrets,
                headers=exc.response.headers,
            )
        credentials = getattr(sdk, "CredentialsError", None)  # anthropic's
        if credentials is not None and isinstance(exc, credentials):
            return ActorError(
                _errors.auth_message(url, self.key_env, self._key() is not None), kind="auth"
            )
        if isinstance(exc, sdk.APIResponseValidationError | pydantic.ValidationError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        if isinstance(exc, json.JSONDecodeError):
            return _errors.bad_response(url, _errors.describe(exc), secrets)
        return _errors.unknown_error(url, exc, secrets)

    async def aclose(self) -> None:
        """Close the running event loop's HTTP client now (it is closed with its loop anyway)."""
        await self._clients.aclose()


async def _close(client: Any) -> None:
    await client.close()
