"""Test doubles: a model that answers from a script or a function, with real usage numbers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

from turing.actors.base import ModelRequest, ModelResponse, Usage, estimate_tokens
from turing.errors import ActorError

Answer = str | ModelResponse | BaseException | dict[str, Any] | list[Any]


class FakeModel:
    """Answers each call with the next scripted response, or with `fn(request)`.

    A scripted dict or list is sent as its JSON text; an exception instance is raised;
    `requests` keeps every request for assertions. Running out of answers is an error,
    so a test never passes on an unexpected extra call.
    """

    def __init__(
        self,
        responses: Iterable[Answer] | Callable[[ModelRequest], Answer] = (),
        *,
        name: str = "fake",
        delay: float = 0.0,
    ) -> None:
        self._fn = responses if callable(responses) else None
        self._queue: list[Answer] = [] if callable(responses) else list(responses)
        self.name = name
        self.delay = delay
        self.requests: list[ModelRequest] = []

    @property
    def identity(self) -> str:
        return f"fake:{self.name}"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._fn is not None:
            answer = self._fn(request)
        elif self._queue:
            answer = self._queue.pop(0)
        else:
            raise ActorError(
                f"{self.identity}: no scripted response left (call {len(self.requests)})"
            )
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, ModelResponse):
            return answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        prompt = sum(estimate_tokens(m.content) for m in request.messages)
        return ModelResponse(text, Usage(prompt, estimate_tokens(text), 1), model=self.name)
