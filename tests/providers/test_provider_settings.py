"""The provider settings users reach for, from turing.toml to the server: Ollama's `num_ctx`,
`keep_alive` and `options`; an OpenAI-compatible server's `extra_body` (vLLM's guided
decoding, llama.cpp's grammar) and `structured`. The stub server records what arrives."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from providers.stub import StubServer
from providers.test_ollama import chat_reply
from providers.test_openai import completion
from turing.actors.base import Message, ModelRequest
from turing.project import Project

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"skills": {"type": "array", "items": {"type": "string"}}},
    "required": ["skills"],
}


def project(tmp_path: Path, actors: str) -> Project:
    config = tmp_path / "turing.toml"
    config.write_text(
        f'[project]\nname = "t"\ndatabase = "sqlite:///{tmp_path}/t.db"\n\n{actors}',
        encoding="utf-8",
    )
    return Project.load(config)


def ask(project: Project, ref: str) -> None:
    actor = project.resolve_actor(ref)
    request = ModelRequest((Message("user", "find skills in json"),), schema=SCHEMA)
    asyncio.run(actor.complete(request))


@pytest.mark.turing_allow_models  # the stub is a server of this process, not the simulator
def test_ollama_num_ctx_keep_alive_and_options_reach_the_server(
    tmp_path: Path, server: StubServer
) -> None:
    p = project(
        tmp_path,
        f"""[actors.local]
spec = "ollama:qwen2.5:7b"
base_url = "{server.url}"
num_ctx = 16384
keep_alive = "30m"
options = {{ top_k = 20, top_p = 0.9, repeat_penalty = 1.1, num_gpu = 99 }}
""",
    )
    server.reply(chat_reply())
    ask(p, "local")
    body = server.last.body
    assert body["keep_alive"] == "30m"
    assert body["options"] == {
        "top_k": 20,
        "top_p": 0.9,
        "repeat_penalty": 1.1,
        "num_gpu": 99,
        "temperature": 0.0,
        "num_ctx": 16384,
    }
    assert body["format"] == SCHEMA


@pytest.mark.turing_allow_models
def test_openai_extra_body_reaches_the_server(tmp_path: Path, server: StubServer) -> None:
    p = project(
        tmp_path,
        f"""[actors.vllm]
spec = "openai:Qwen/Qwen2.5-7B-Instruct"
base_url = "{server.url}/v1"
structured = "json_object"
[actors.vllm.extra_body]
guided_decoding_backend = "xgrammar"
top_k = 40
repetition_penalty = 1.05

[actors.llamacpp]
spec = "openai:smollm2"
base_url = "{server.url}/v1"
structured = "prompt"
extra_body = {{ grammar = 'root ::= "{{" [^}}]* "}}"', n_probs = 0 }}
""",
    )
    server.reply(completion(), completion())
    ask(p, "vllm")
    body = server.last.body
    assert body["guided_decoding_backend"] == "xgrammar"
    assert (body["top_k"], body["repetition_penalty"]) == (40, 1.05)
    assert body["response_format"] == {"type": "json_object"}  # structured: as configured
    ask(p, "llamacpp")
    body = server.last.body
    assert body["grammar"] == 'root ::= "{" [^}]* "}"'
    assert body["n_probs"] == 0
    assert "response_format" not in body  # structured = "prompt": the schema in the prompt
    assert "JSON Schema" in body["messages"][0]["content"]


def test_unknown_structured_mode_is_refused_by_the_config(tmp_path: Path) -> None:
    from turing.errors import ConfigError

    with pytest.raises(ConfigError, match="structured"):
        project(tmp_path, '[actors.x]\nspec = "openai:m"\nstructured = "grammar"\n')
