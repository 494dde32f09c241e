"""Quality gates: how many plausible but ungrounded answers reach the sink, and what it costs
to stop them.

N talent job_skills tasks (default 300) run through the Orchestrator on a fresh SQLite
file (postings in, posting_skills out), the real Ollama provider, and the simulator with
the `ungrounded` fault at RATE (default 20%): a schema-valid answer with one invented value
(a skill name no taxonomy has, or a reasoning quoting a sentence the posting does not
contain). No contract can see it. Three runs, each on its own database and simulator:

  (a) no gates: the contract only;
  (b) checks: talent's JOB_SKILLS_CHECKS (skill in the taxonomy, quoted reasoning in the
      posting), on_fail="reask";
  (c) grading: no checks, a grader actor (another model on the simulator) with a rubric;
      the simulated grader is a *modelled* one: it notices an ungrounded answer with
      probability 1 - GRADER_MISS (default miss 20%) and wrongly fails a good one with
      GRADER_FALSE_ALARM (default 3%), so (c)'s figure follows from those assumptions.

An answer "reaches the sink ungrounded" when the rows written for its posting differ from
the correct answer (what the talent responder answers without a fault); that is judged
against the truth, not by the checks themselves. Cost: model calls, tokens and simulated
cost (qwen2.5:7b and the grader priced at $0.15 / $0.60 per million input / output tokens).
Target: under 1% with checks.

Run: `.venv/bin/python benchmarks/quality.py [N] [RATE]`, e.g. `... quality.py 300 0.2`.
"""

from __future__ import annotations

import json
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "examples" / "talent"))

from _common import variant  # noqa: E402
from talent import extractor  # noqa: E402
from talent.generator import build_database  # noqa: E402
from talent.responder import TalentResponder  # noqa: E402
from talent.workflows import JOB_SKILLS_CHECKS, job_skills  # noqa: E402
from turing import Executor, Orchestrator, Registry, RunResult, Workflow  # noqa: E402
from turing.actors.base import Usage  # noqa: E402
from turing.actors.managed import ManagedActor  # noqa: E402
from turing.actors.settings import ActorSettings  # noqa: E402
from turing.grading import Grade  # noqa: E402
from turing.providers import create  # noqa: E402
from turing.sim import SimConfig, Simulator  # noqa: E402
from turing.sim.schema import normalize  # noqa: E402
from turing.store.db import connect  # noqa: E402
from turing.store.store import Store  # noqa: E402

ARGS = [a for a in sys.argv[1:] if re.fullmatch(r"[\d.]+", a)]
N = int(ARGS[0]) if ARGS else 300
RATE = float(ARGS[1]) if len(ARGS) > 1 else 0.2
GRADER_MISS = 0.20
GRADER_FALSE_ALARM = 0.03
MODEL, GRADER_MODEL = "qwen2.5:7b", "llama3.1:8b"
RUBRIC = (
    "Every skill is a canonical skill name the posting asks for, and every phrase quoted in "
    "a skill's reasoning occurs word for word in the posting."
)
_INPUT = re.compile(r"Task input \(JSON\):\n(.*?)\n\nAnswer to grade \(JSON\):\n(.*?)\n\n", re.S)


class ModelledGrader:
    """The grader model on the simulator: answers `{score, reasons}` for grading prompts by
    comparing the answer with what the posting says, wrong at the modelled rates; anything
    else goes to the talent responder."""

    def __init__(self) -> None:
        self.talent = TalentResponder()

    def respond(
        self,
        model: str,
        messages: list[dict[str, Any]],
        schema: dict[str, Any] | None,
        rng: random.Random,
    ) -> Any:
        props = set(normalize(schema, schema).get("properties") or {}) if schema else set()
        text = "\n\n".join(str(m.get("content")) for m in messages if m.get("role") == "user")
        found = _INPUT.search(text + "\n\n")
        if not {"score", "reasons"} <= props or not found:
            return self.talent.respond(model, messages, schema, rng)
        data, answer = json.loads(found.group(1)), json.loads(found.group(2))
        truth = extractor.extract_posting_skills(
            data["posting_id"], data["title"], data["description"]
        )
        bad = _rows(answer) != _rows(truth)
        if bad and rng.random() >= GRADER_MISS:
            return {"score": 0.2, "reasons": ["a skill or a quote is not in the posting"]}
        if not bad and rng.random() < GRADER_FALSE_ALARM:
            return {"score": 0.5, "reasons": ["the weights look arbitrary"]}
        return {"score": 0.95, "reasons": []}


def _rows(value: Any) -> set[tuple[str, str]]:
    return {(s["name"], s["reasoning"]) for s in value.get("skills") or []}


@dataclass
class Row:
    label: str
    tasks: int
    sunk: int
    ungrounded: int
    failed: int
    usage: Usage
    graded: int
    check_failures: int
    faults: int
    seconds: float


def run(label: str, workflow: Workflow) -> Row:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "quality.db"
        build_database(path, seed=15, postings=N, profiles=5)
        db = connect(f"sqlite:///{path}")
        store = Store(db)
        config = SimConfig.profile("fast", seed=7, faults={"ungrounded": RATE})
        results: list[RunResult] = []
        with Simulator(config, responder=ModelledGrader()) as sim:

            def actor(model: str) -> ManagedActor:
                settings = ActorSettings(
                    "ollama", model, base_url=sim.url, timeout=10,
                    price_input=0.15, price_output=0.60,
                )  # fmt: skip
                return ManagedActor(create(settings), settings, seed=3)

            executor = Executor({"skills_extractor": actor(MODEL), "grader": actor(GRADER_MODEL)})
            orch = Orchestrator(Registry([workflow]), executor, store, concurrency=16)
            started = time.perf_counter()
            orch.process_pending_tasks(on_result=lambda _t, r, _o: results.append(r))
            seconds = time.perf_counter() - started
            faults = sim.stats()["faults"]["ungrounded"]
        with db.read() as tx:
            postings = {
                r["posting_id"]: r
                for r in tx.sql("SELECT posting_id, title, description FROM postings")
            }
            sunk: dict[int, set[tuple[str, str]]] = {}
            for r in tx.sql("SELECT posting_id, skill, reasoning FROM posting_skills"):
                sunk.setdefault(r["posting_id"], set()).add((r["skill"], r["reasoning"]))
        db.close()
    wrong = 0
    for pid, rows in sunk.items():
        p = postings[pid]
        truth = extractor.extract_posting_skills(pid, p["title"], p["description"])
        wrong += rows != _rows(truth)
    usage = sum((r.usage for r in results), Usage())
    return Row(
        label,
        len(postings),
        len(sunk),
        wrong,
        sum(not r.ok for r in results),
        usage,
        sum(1 for r in results for a in r.attempts if a.step.endswith(":grade")),
        sum(
            1
            for r in results
            for a in r.attempts
            for v in a.violations
            if v.rule.startswith("check:")
        ),
        faults,
        seconds,
    )


def main() -> None:
    grade = Grade(actor="grader", rubric=RUBRIC, accept_at=0.7)
    rows = [
        run("(a) no gates", variant(job_skills, checks=[])),
        run("(b) checks", variant(job_skills, checks=list(JOB_SKILLS_CHECKS))),
        run("(c) grading", variant(job_skills, checks=[], grade=grade)),
    ]
    print(
        f"quality: {N} talent job_skills tasks on SQLite, Ollama provider -> simulator "
        f"(fault ungrounded at {RATE:.0%}; grader modelled: misses {GRADER_MISS:.0%}, "
        f"false alarms {GRADER_FALSE_ALARM:.0%})"
    )
    head = (
        f"  {'run':14} {'sunk':>5} {'ungrounded':>16} {'failed':>6} {'faults':>6} "
        f"{'calls':>6} {'grader':>6} {'tokens':>9} {'cost $':>8} {'check fails':>11} {'s':>5}"
    )
    print(head)
    for r in rows:
        share = r.ungrounded / max(1, r.sunk)
        print(
            f"  {r.label:14} {r.sunk:5} {r.ungrounded:5} ({share:7.2%}) {r.failed:6} "
            f"{r.faults:6} {r.usage.calls:6} {r.graded:6} {r.usage.total_tokens:9,} "
            f"{r.usage.cost:8.4f} {r.check_failures:11} {r.seconds:5.1f}"
        )
    b = rows[1]
    met = b.ungrounded / max(1, b.sunk) < 0.01
    print(f"  target (< 1% ungrounded at the sink with checks): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
