"""Cost of validating one `job_skills` output with 10 skills.

Compares Turing's compiled contract (jsonschema-rs) with the `jsonschema` package on the
same schema and document, and with pydantic-core validating the model itself, so the choice
of validator is measured rather than assumed. Run: `.venv/bin/python benchmarks/validation.py`.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "talent"))

import jsonschema  # noqa: E402

from talent.contracts import JobSkills  # noqa: E402
from turing import Contract  # noqa: E402


def sample() -> dict[str, object]:
    names = ["Python", "PostgreSQL", "Kubernetes", "Docker", "AWS", "Terraform", "Go", "Kafka",
             "React", "TypeScript"]  # fmt: skip
    return {
        "posting_id": 1121,
        "skills": [
            {
                "name": name,
                "importance": ("required", "preferred", "nice_to_have")[i % 3],
                "weight": 10 + 9 * i,
                "proficiency": ("beginner", "intermediate", "advanced", "expert")[i % 4],
                "years_required": i if i % 2 else None,
                "reasoning": f"The posting lists {name} under requirements.",
            }
            for i, name in enumerate(names)
        ],
    }


def per_call_us(fn: object, number: int) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    best = min(timer.repeat(repeat=5, number=number))
    return best / number * 1e6


def main() -> None:
    doc = sample()
    contract = Contract.from_model(JobSkills)
    assert contract.is_valid(doc), contract.violations(doc)
    reference = jsonschema.Draft202012Validator(contract.schema)
    assert reference.is_valid(doc)
    turing_us = per_call_us(lambda: contract.is_valid(doc), 20_000)
    full_us = per_call_us(lambda: contract.violations(doc), 20_000)
    js_us = per_call_us(lambda: reference.is_valid(doc), 500)
    pyd_us = per_call_us(lambda: JobSkills.model_validate(doc), 20_000)
    print("validating one job_skills output with 10 skills (best of 5 runs)")
    print(f"  turing Contract.is_valid (jsonschema-rs): {turing_us:8.2f} us")
    print(f"  turing Contract.violations (valid doc):  {full_us:8.2f} us")
    print(f"  jsonschema Draft202012Validator.is_valid: {js_us:8.2f} us")
    print(f"  pydantic model_validate (for reference):  {pyd_us:8.2f} us")
    print(f"  speed-up over jsonschema: {js_us / turing_us:.0f}x")
    target = turing_us <= 5 and js_us / turing_us >= 50
    print(f"  target (<= 5 us and >= 50x): {'met' if target else 'NOT met'}")


if __name__ == "__main__":
    main()
