"""The estimate's arithmetic: token counting on rendered prompts, extrapolation from a sample,
re-ask overhead, prices sync and by batch, the tokenizer's fallback."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pydantic import BaseModel

from turing import LLMStep, Workflow
from turing.actors.settings import ActorSettings
from turing.estimate import (
    APPROXIMATE,
    REASK_TOKENS,
    extrapolate,
    price,
    prompt_tokens,
    tokenizer,
)


class In(BaseModel):
    text: str


class Out(BaseModel):
    label: str


def wf() -> Workflow:
    return Workflow(
        "w", input=In, output=Out, steps=[LLMStep("s", prompt="Label: {{ text }}", actor="m")]
    )


class Settled:
    def __init__(self, provider: str, model: str = "m", **kw: Any) -> None:
        self.settings = ActorSettings(provider, model, **kw)


def test_prompt_tokens_count_the_rendered_prompt_and_the_schema() -> None:
    w = wf()
    cs = w.steps[0]
    short, partial = prompt_tokens(w, cs, {"text": "a"}, len)  # 1 "token" a character
    long, _ = prompt_tokens(w, cs, {"text": "a" * 1000}, len)
    assert long - short == 999 and not partial  # the input is in the prompt, rendered
    assert short > len("Label: a")  # the output schema is sent (and billed) too


def test_extrapolation_scales_the_sample_and_adds_the_reasks() -> None:
    assert extrapolate(100, prompt=50, calls=1.0, answer=20) == (5000, 2000)
    # half the tasks re-asked once: each re-ask resends prompt, answer and the problems
    prompt, answer = extrapolate(100, prompt=50, calls=1.5, answer=20)
    assert prompt == round(100 * (50 * 1.5 + 0.5 * (20 + REASK_TOKENS)))
    assert answer == 100 * 1.5 * 20
    assert extrapolate(0, prompt=50, calls=2, answer=20) == (0, 0)


def test_prices_sync_and_by_batch() -> None:
    gpt = Settled("openai", price_input=0.15, price_output=0.60)
    cost, batch = price(gpt, 1_000_000, 1_000_000)
    assert cost == pytest.approx(0.75) and batch == pytest.approx(0.375)
    local = Settled("ollama", price_input=0.1, price_output=0.1)
    assert price(local, 1_000_000, 0) == (pytest.approx(0.1), None)  # no batch API
    assert price(object(), 10, 10) == (None, None)  # an actor without prices


def test_the_tokenizer_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    count, how = tokenizer(Settled("ollama"))
    assert how == APPROXIMATE and count("abcdefgh") == 2
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # not installed
    count, how = tokenizer(Settled("openai", "gpt-4o-mini"))
    assert how.startswith(APPROXIMATE) and "turing[estimate]" in how


def test_tiktoken_counts_when_it_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    class Encoding:
        name = "o200k_base"

        def encode(self, text: str) -> list[int]:
            return list(range(len(text.split())))

    class Tiktoken:
        @staticmethod
        def encoding_for_model(model: str) -> Encoding:
            raise KeyError(model)

        @staticmethod
        def get_encoding(name: str) -> Encoding:
            return Encoding()

    monkeypatch.setitem(sys.modules, "tiktoken", Tiktoken)
    count, how = tokenizer(Settled("openai", "some-new-model"))
    assert how == "tiktoken o200k_base" and count("three words here") == 3
