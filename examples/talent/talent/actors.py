"""The offline actor: deterministic taxonomy matching standing in for a model.

It answers the talent workflows' LLM steps from the values the prompt was rendered from,
so the example gives meaningful results with no model at all. It still answers with JSON
text, like a model would, so the executor's parsing, repair and validation all run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from talent import extractor
from turing import ActorError, ModelRequest, ModelResponse, Usage
from turing.actors.base import estimate_tokens

Handler = Callable[[Mapping[str, Any]], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "job_skills_output": lambda v: extractor.extract_posting_skills(
        v["posting_id"], v["title"], v["description"]
    ),
    "profile_skills_output": lambda v: extractor.extract_profile_skills(
        v["profile_id"], v["cv_text"]
    ),
    "profile_skills_legacy_output": lambda v: extractor.extract_profile_skills_legacy(
        v["profile_id"], v["cv_text"]
    ),
    "profile_import_extract": lambda v: extractor.parse_cv(v["cv_text"]),
}


class OfflineExtractor:
    """`talent:offline`: handles every talent extraction step by its output schema name."""

    identity = "talent:offline/1"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        handler = HANDLERS.get(request.schema_name)
        if handler is None:
            raise ActorError(f"{self.identity} cannot answer for schema {request.schema_name!r}")
        text = json.dumps(handler(request.variables), ensure_ascii=False)
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        return ModelResponse(text, Usage(prompt_tokens, estimate_tokens(text), 1), self.identity)
