"""Strict templates: placeholders resolved at load time, all-or-nothing rendering at run time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from turing.errors import TemplateRenderError, WorkflowDefinitionError
from turing.steps import LLMStep, ScriptStep
from turing.templates import Placeholder, PromptTemplate
from turing.workflow import Workflow


class Company(BaseModel):
    name: str
    city: str | None = None


class PostingIn(BaseModel):
    posting_id: int
    text: str
    company: Company
    meta: dict[str, Any] = {}


class Skill(BaseModel):
    name: str
    level: int


class Extracted(BaseModel):
    skills: list[Skill]
    seniority: str


class Summary(BaseModel):
    summary: str


def build(*steps: Any) -> Workflow:
    return Workflow("talent", input=PostingIn, output=Summary, steps=list(steps))


EXTRACT = LLMStep("extract", "Extract skills from {{ text }}", output=Extracted)


# ------------------------------------------------------------------ PromptTemplate itself


@pytest.mark.parametrize(
    ("source", "placeholders"),
    [
        ("{{ text }}", ["text"]),
        ("{{ extract.skills }} and {{ text }}", ["extract.skills", "text"]),
        ("{{ company.name | upper }}", ["company.name"]),
        ("{{ company['name'] }}", ["company.name"]),
        ("{{ extract.skills[0].name }}", ["extract.skills"]),
        ("{% for s in extract.skills %}{{ s.name }}{% endfor %}", ["extract.skills"]),
        ("{% if company.city %}{{ company.city }}{% endif %}", ["company.city"]),
        ("{% set x = 1 %}{{ x }}", []),
        ("plain text", []),
    ],
)
def test_placeholders_found(source: str, placeholders: list[str]) -> None:
    template = PromptTemplate(source)
    assert sorted(str(p) for p in template.placeholders) == sorted(placeholders)
    assert template.names == frozenset(p.split(".")[0] for p in placeholders)


def test_placeholder_str() -> None:
    assert str(Placeholder("extract", ("skills", "name"))) == "extract.skills.name"
    assert str(Placeholder("text", ())) == "text"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        pytest.param("hello", "<hello>", id="str"),
        pytest.param(0, "<0>", id="zero"),
        pytest.param(False, "<False>", id="false"),
        pytest.param("", "<>", id="empty-string"),
        pytest.param({"k": [1, "é"]}, '<{"k": [1, "é"]}>', id="dict-as-json"),
        pytest.param([1, "two"], '<[1, "two"]>', id="list-as-json"),
    ],
)
def test_render_values(value: Any, rendered: str) -> None:
    assert PromptTemplate("<{{ x }}>").render({"x": value}) == rendered


@pytest.mark.parametrize(
    "source",
    [
        "{{ x }}",
        "{{ x.y }}",
        "{% for i in [1] %}{{ x }}{% endfor %}",
    ],
)
def test_none_never_renders_as_text(source: str) -> None:
    with pytest.raises(TemplateRenderError, match="null"):
        PromptTemplate(source).render({"x": None} if "x.y" not in source else {"x": {"y": None}})


def test_none_can_be_guarded() -> None:
    template = PromptTemplate("{{ x or 'n/a' }}{% if y %}{{ y }}{% endif %}")
    assert template.render({"x": None, "y": None}) == "n/a"


def test_json_filter() -> None:
    assert PromptTemplate("{{ x | json }}").render({"x": 'a"b'}) == '"a\\"b"'


def test_missing_variable_is_named() -> None:
    with pytest.raises(TemplateRenderError, match=r"undefined placeholder\(s\): a, b"):
        PromptTemplate("{{ b }} {{ a }} {{ c }}").render({"c": 1})


def test_missing_attribute_at_run_time_raises() -> None:
    with pytest.raises(TemplateRenderError, match="undefined value"):
        PromptTemplate("{{ x.nope }}").render({"x": {"y": 1}})


@pytest.mark.parametrize(
    "source",
    [
        "{{ x.__class__ }}",
        "{{ x.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__ }}",
        "{{ x.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_dunder_access(source: str) -> None:
    with pytest.raises(TemplateRenderError, match="unsafe"):
        PromptTemplate(source).render({"x": "text"})


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("first line\n{{ text \nthird line", 3),
        ("a\nb\n{% if text %}never closed\n", 3),
        ("{{ text }}\n{% for %}", 2),
    ],
)
def test_syntax_error_has_line_number(source: str, line: int) -> None:
    with pytest.raises(ValueError, match=f"template syntax error on line {line}"):
        PromptTemplate(source)


# ------------------------------------------------------------------ checks at workflow load


@pytest.mark.parametrize(
    ("steps", "step", "fragment"),
    [
        pytest.param(
            [LLMStep("summarize", "Summarize {{ txet }}")],
            "summarize",
            "{{ txet }}: unknown name 'txet' (known: company, meta, posting_id, text)",
            id="misspelled-input-field",
        ),
        pytest.param(
            [EXTRACT, LLMStep("summarize", "Use {{ extract.skils }}")],
            "summarize",
            "{{ extract.skils }}: extract has no field 'skils' (fields: seniority, skills)",
            id="misspelled-step-output-field",
        ),
        pytest.param(
            [EXTRACT, LLMStep("summarize", "Use {{ extract['skils'] }}")],
            "summarize",
            "extract has no field 'skils'",
            id="misspelled-step-output-field-subscript",
        ),
        pytest.param(
            [LLMStep("summarize", "At {{ company.nmae }}")],
            "summarize",
            "{{ company.nmae }}: company has no field 'nmae' (fields: city, name)",
            id="misspelled-input-object-field",
        ),
        pytest.param(
            [LLMStep("summarize", "{{ text }}", system="You read {{ txt }}")],
            "summarize",
            "system placeholder {{ txt }}: unknown name 'txt'",
            id="misspelled-in-system-prompt",
        ),
        pytest.param(
            [
                LLMStep("summarize", "Use {{ extract.skills }}"),
                LLMStep("extract", "{{ text }}", output=Extracted),
            ],
            "summarize",
            "unknown name 'extract'",
            id="later-step",
        ),
        pytest.param(
            [
                EXTRACT,
                LLMStep("grade", "{{ text }}", output=Summary, after=()),
                LLMStep("summarize", "{{ extract.skills }}", after=("grade",)),
            ],
            "summarize",
            "step 'extract' is not a dependency of this step",
            id="not-a-dependency",
        ),
        pytest.param(
            [
                EXTRACT,
                LLMStep("summarize", "{{ extract.skills }}", after=()),
            ],
            "summarize",
            "step 'extract' is not a dependency of this step",
            id="after-empty-hides-earlier-steps",
        ),
    ],
)
def test_unresolved_placeholder_is_a_load_error(steps: list[Any], step: str, fragment: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        build(*steps)
    assert info.value.workflow == "talent"
    assert info.value.step == step
    message = str(info.value)
    assert message.startswith(f"workflow 'talent', step {step!r}: ")
    assert fragment in message


def test_template_syntax_error_is_a_load_error_with_line() -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        build(LLMStep("summarize", "Text:\n{{ text }\n"))
    assert info.value.step == "summarize"
    assert "prompt: template syntax error on line 2" in str(info.value)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("{% for s in extract.skills %}- {{ s.name }} ({{ s.level }})\n{% endfor %}"),
        pytest.param("{% for s in extract.skills %}{{ loop.index }}. {{ s }}{% endfor %}"),
        pytest.param("{% set first = extract.skills[0] %}{{ first.name }}"),
        pytest.param("{{ extract.skills[0].name }} at {{ company.name }} ({{ posting_id }})"),
        pytest.param("{{ meta.anything.goes }}"),  # dict[str, Any] declares no properties
        pytest.param("{% if company.city %}{{ company.city }}{% endif %}"),
        pytest.param("{{ extract | json }} {{ text | upper }}"),
    ],
)
def test_valid_references_load(prompt: str) -> None:
    workflow = build(EXTRACT, LLMStep("summarize", prompt))
    assert workflow.steps[1].prompt is not None
    assert workflow.steps[1].prompt.source == prompt


def test_dependency_outputs_are_visible_transitively() -> None:
    workflow = build(
        EXTRACT,
        LLMStep("grade", "{{ extract.seniority }}", output=Summary),
        LLMStep("summarize", "{{ extract.skills }} {{ grade.summary }}", after=("grade",)),
    )
    assert workflow.steps[2].visible == frozenset({"extract", "grade"})


def test_script_step_output_without_contract_is_not_checked() -> None:
    workflow = build(
        ScriptStep("prep", run=lambda data: {"clean": data["text"]}),
        LLMStep("summarize", "{{ prep.clean }} {{ prep.whatever }}"),
    )
    assert workflow.steps[0].contract is None


def test_render_at_run_time_with_real_values() -> None:
    workflow = build(EXTRACT, LLMStep("summarize", "{{ company.name }}: {{ extract.skills }}"))
    prompt = workflow.steps[1].prompt
    assert prompt is not None
    rendered = prompt.render(
        {
            "company": {"name": "ACME"},
            "extract": {"skills": [{"name": "go", "level": 2}], "seniority": "x"},
        }
    )
    assert rendered == 'ACME: [{"name": "go", "level": 2}]'


def test_null_optional_input_field_raises_at_render() -> None:
    workflow = build(LLMStep("summarize", "City: {{ company.city }}"))
    prompt = workflow.steps[0].prompt
    assert prompt is not None
    with pytest.raises(TemplateRenderError):
        prompt.render({"company": {"name": "ACME", "city": None}})
