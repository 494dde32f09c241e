"""Model cascade: cost and validity of a small model, a large one, and small -> large.

N one-step labelling tasks (default 500; the items/labels domain of llm_bound.py) run
through the Orchestrator on a fresh SQLite file, the Ollama provider and the simulator
(no latency). The simulator's per-model fault rates (`model_faults`) make the small model
(qwen2.5:3b) drop a required field from 60% of its answers and the large one (gpt-4o) from
2%; half of those drop the subject key, which repair restores from the input, so after
repair the small model is valid about 70% of the time and the large one 99% (measured and
printed as "first answers valid"). Prices per million
input / output tokens: small $0.15 / $0.60, large ten times that ($1.50 / $6.00).

Three configurations, each with no re-ask (`max_reasks=0`: one answer per model) and with
the default two re-asks on the (last) model:
  all-small   actor="small"
  all-large   actor="large"
  cascade     actor=["small", "large"]: an answer from small that still breaks the contract
              after repair goes to large (escalate on the first failure)

Reported: tasks that succeeded (validity), calls per model, total cost, cost per succeeded
task, and the cascade's saving against all-large. FrugalGPT reported up to 98% cost
reduction at equal quality on its own tasks; this setup's saving follows from the 10x price
ratio and the small model's 70% validity.

Run: `.venv/bin/python benchmarks/cascade.py [N]`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from _common import database, variant
from llm_bound import WORKFLOW, add_items
from turing import Executor, Orchestrator, Registry, RunResult, Workflow
from turing.actors.base import Usage
from turing.actors.managed import ManagedActor
from turing.actors.settings import ActorSettings
from turing.providers import create
from turing.sim import SimConfig, Simulator
from turing.store.store import Store

N = int(next((a for a in sys.argv[1:] if a.isdigit()), "1000"))
SMALL, LARGE = "qwen2.5:3b", "gpt-4o"
PRICES = {SMALL: (0.15, 0.60), LARGE: (1.50, 6.00)}
FAULTS = {SMALL: {"missing_field": 0.60}, LARGE: {"missing_field": 0.02}}


@dataclass
class Row:
    label: str
    reasks: int
    succeeded: int
    calls: dict[str, int]
    asked: dict[str, int]  # tasks each model was asked
    valid: dict[str, int]  # of those, first answers valid after repair
    usage: Usage
    seconds: float

    @property
    def per_success(self) -> float:
        return self.usage.cost / max(1, self.succeeded)


def run(label: str, workflow: Workflow, reasks: int) -> Row:
    results: list[RunResult] = []
    config = SimConfig.profile("fast", seed=11, model_faults=FAULTS)
    with database("sqlite") as (_url, db), Simulator(config) as sim:
        add_items(db, N)

        def actor(model: str) -> ManagedActor:
            price_in, price_out = PRICES[model]
            settings = ActorSettings(
                "ollama", model, base_url=sim.url, timeout=10, max_retries=0,
                price_input=price_in, price_output=price_out,
            )  # fmt: skip
            return ManagedActor(create(settings), settings, seed=3)

        executor = Executor({"small": actor(SMALL), "large": actor(LARGE)})
        orch = Orchestrator(Registry([workflow]), executor, Store(db), concurrency=16)
        started = time.perf_counter()
        report = orch.process_pending_tasks(on_result=lambda _t, r, _o: results.append(r))
        seconds = time.perf_counter() - started
        calls: dict[str, int] = {}
        asked: dict[str, int] = {}
        valid: dict[str, int] = {}
        for result in results:
            seen: set[str] = set()
            for attempt in result.attempts:
                model = attempt.actor.split("@")[0].removeprefix("ollama:")
                calls[model] = calls.get(model, 0) + 1
                if model not in seen:  # the model's first answer to this task
                    seen.add(model)
                    asked[model] = asked.get(model, 0) + 1
                    valid[model] = valid.get(model, 0) + (not attempt.violations)
    usage = sum((r.usage for r in results), Usage())
    return Row(label, reasks, report.succeeded, calls, asked, valid, usage, seconds)


def main() -> None:
    rows = []
    for reasks in (0, 2):
        rows += [
            run("all-small", variant(WORKFLOW, actor="small", max_reasks=reasks), reasks),
            run("all-large", variant(WORKFLOW, actor="large", max_reasks=reasks), reasks),
            run(
                "cascade small->large",
                variant(WORKFLOW, actor=["small", "large"], max_reasks=reasks),
                reasks,
            ),
        ]
    print(
        f"cascade: {N} labelling tasks on SQLite, Ollama provider -> simulator; small "
        f"{SMALL} valid 70% at ${PRICES[SMALL][0]}/${PRICES[SMALL][1]} per M tokens, large "
        f"{LARGE} valid 99% at ${PRICES[LARGE][0]}/${PRICES[LARGE][1]}"
    )
    print(
        f"  {'configuration':22} {'re-asks':>7} {'succeeded':>15} {'small calls':>11} "
        f"{'large calls':>11} {'first answers valid':>21} {'cost $':>9} {'$/succeeded':>11} "
        f"{'saving':>7} {'s':>5}"
    )
    for r in rows:
        large = next(x for x in rows if x.label == "all-large" and x.reasks == r.reasks)
        saving = 1 - r.per_success / large.per_success
        firsts = " ".join(
            f"{'S' if m == SMALL else 'L'} {r.valid[m] / r.asked[m]:4.0%}"
            for m in (SMALL, LARGE)
            if r.asked.get(m)
        )
        print(
            f"  {r.label:22} {r.reasks:7} {r.succeeded:5} ({r.succeeded / N:6.1%}) "
            f"{r.calls.get(SMALL, 0):11} {r.calls.get(LARGE, 0):11} {firsts:>21} "
            f"{r.usage.cost:9.5f} {r.per_success:11.8f} {saving:7.1%} {r.seconds:5.1f}"
        )
    print("  (saving: cost per succeeded task against all-large with the same re-asks)")


if __name__ == "__main__":
    main()
