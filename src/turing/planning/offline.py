"""The offline planner: a goal becomes a plan without any model.

Each part of the goal ("..., then ...") is matched to the best registered workflow (BM25 over
names, descriptions, tags and contract fields, as `find_workflow` does); the steps are then
ordered by contract data flow (a workflow whose output fields feed another's input fields
runs first), whatever order the goal names them in. Time phrases become the date filters a
source declares, and flow on to later steps over the same subjects, so "extract skills from
jobs fetched today, then match candidates" matches exactly today's postings. "top 5" fills
the consumer's count input. Anything it cannot place is an error that says which words and
why, never a guess: a condition that would narrow the rows ("draft replies for urgent ones")
is refused rather than dropped (dropped, it would run on every row, and pay for it), with
the filters the workflow's source declares; an ordering it cannot honour ("newest first")
is named in the plan's notes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from turing.compat import problems as compat_problems
from turing.planning.catalog import Catalog, Entry, Filter
from turing.planning.goal import Clause, TimeRange, split_goal
from turing.planning.model import CannotPlan, Plan
from turing.planning.schema import PlanLimits
from turing.planning.validate import looks_like_sql, parse_plan
from turing.search import bm25, terms

_FILLER = frozenset({"report", "show", "print", "result", "summarize", "summary", "me", "done"})
_COUNT_WORDS = ("top", "count", "limit", "number", "how many", "k")
_CLEAR_LEAD = 1.25  # "and" splits pieces that are not whole requests only when this clear


class OfflinePlanner:
    name = "offline"

    def __init__(
        self, catalog: Catalog, limits: PlanLimits | None = None, *, min_score: float = 0.5
    ) -> None:
        self.catalog = catalog
        self.limits = limits or PlanLimits()
        self.min_score = min_score

    def plan(self, goal: str, today: dt.date | None = None) -> Plan:
        sql = looks_like_sql(goal)
        if sql:
            raise CannotPlan(
                f"the goal contains SQL ({sql!r}); plans never carry SQL. Say what to do in "
                "words; filters come from what each workflow's source declares"
            )
        clauses = split_goal(goal, today)
        picks = self._pick(goal, clauses)
        for clause, entry in picks:
            _refuse_conditions(clause, entry)
        order = _data_flow_order(picks)
        return self._build(goal, picks, order)

    # --------------------------------------------------------------------- steps
    def _pick(self, goal: str, clauses: list[Clause]) -> list[tuple[Clause, Entry]]:
        entries = list(self.catalog)
        docs = [e.document() for e in entries]
        picks: list[tuple[Clause, Entry]] = []
        found: list[tuple[Clause, Entry]] = []
        for clause in clauses:
            sure = 1.0 if clause.pieces_whole else _CLEAR_LEAD
            split = [(piece, self._best(piece, entries, docs, sure)) for piece in clause.pieces]
            if split and all(e is not None for _, e in split):
                names = {e.name for _, e in split if e is not None}
                if len(names) == len(split):  # different work on each side of "and"
                    found += [(piece, e) for piece, e in split if e is not None]
                    continue
            words = terms(clause.words)
            if not words or set(words) <= _FILLER:
                continue  # "and report": every plan reports
            best = self._best(clause, entries, docs)
            if best is None:
                scores = bm25(words, docs)
                ranked = sorted(zip(scores, entries, strict=True), key=lambda p: -p[0])
                closest = f" (closest: {ranked[0][1].name})" if ranked and ranked[0][0] else ""
                raise CannotPlan(
                    f"cannot plan {clause.text!r}: no registered workflow matches it{closest}. "
                    f"Workflows: {', '.join(self.catalog.names())}"
                )
            found.append((clause, best))
        for clause, entry in found:
            for other, chosen in picks:
                if chosen.name == entry.name:
                    raise CannotPlan(
                        f"cannot plan: {other.text!r} and {clause.text!r} both mean "
                        f"{entry.name}; name each piece of work once"
                    )
            picks.append((clause, entry))
        if not picks:
            raise CannotPlan(f"cannot plan {goal!r}: it names no work to do")
        return picks

    def _best(
        self, clause: Clause, entries: list[Entry], docs: list[list[str]], lead: float = 1.0
    ) -> Entry | None:
        """The best-matching workflow, or None below `min_score` (or for filler words), or
        when it does not beat the runner-up by the factor `lead`."""
        words = terms(clause.words)
        if not words or set(words) <= _FILLER:
            return None
        ranked = sorted(zip(bm25(words, docs), entries, strict=True), key=lambda p: -p[0])
        score, entry = ranked[0]
        runner_up = ranked[1][0] if len(ranked) > 1 else 0.0
        if score < self.min_score or (runner_up and score < lead * runner_up):
            return None
        return entry

    def _build(
        self, goal: str, picks: list[tuple[Clause, Entry]], order: list[tuple[int, list[int]]]
    ) -> Plan:
        ids = {index: f"s{n + 1}" for n, (index, _) in enumerate(order)}
        times: dict[int, TimeRange | None] = {}
        steps: list[dict[str, Any]] = []
        notes: list[str] = []
        for index, producers in order:
            clause, entry = picks[index]
            step: dict[str, Any] = {"id": ids[index], "workflow": entry.name, "inputs": {}}
            step["after"] = [ids[p] for p in producers]
            first = None
            if clause.count is not None:
                field = _count_field(entry)
                if field is None and clause.first is not None and entry.has_source:
                    first = clause.first  # "first 100 jobs": a limit on the rows
                elif field is None:
                    raise CannotPlan(
                        f"cannot apply {clause.count} from {clause.text!r}: {entry.name} has "
                        "no count input"
                    )
                else:
                    step["inputs"][field] = clause.count
                    notes.append(f"{ids[index]}: 'top {clause.count}' sets {entry.name}.{field}")
            time = clause.time
            if time is None:  # the same subjects as the step it follows
                for p in producers:
                    if picks[p][1].subject_key == entry.subject_key and times.get(p):
                        time = times[p]
                        notes.append(f"{ids[index]}: narrowed like {ids[p]} (same subjects)")
                        break
            times[index] = time
            if entry.has_source:
                step["for_each"] = {"filters": _filters(entry, time, clause)}
                if first is not None:
                    step["for_each"]["limit"] = first
                    notes.append(f"{ids[index]}: at most {first} items")
            else:
                if time is not None:
                    raise CannotPlan(
                        f"cannot apply {time.phrase!r} to {entry.name}: it runs once on given "
                        "input and has no source to narrow"
                    )
                self._wire_inputs(step, entry, [(ids[p], picks[p][1]) for p in producers])
            if clause.time is not None:
                notes.append(f"{ids[index]}: {clause.time.describe()} (UTC)")
            for phrase in clause.ignored:
                notes.append(
                    f"{ids[index]}: ignored {phrase!r}: a plan runs every selected row, in no "
                    "order the goal can choose"
                )
            steps.append(step)
        for index, producers in order:
            for p in producers:
                notes.append(
                    f"{ids[index]} after {ids[p]}: {picks[p][1].name} output feeds "
                    f"{picks[index][1].name} input"
                )
        return parse_plan(
            {"goal": goal, "steps": steps},
            self.catalog,
            self.limits,
            planner="offline",
            notes=tuple(notes),
        )

    def _wire_inputs(
        self, step: dict[str, Any], entry: Entry, producers: list[tuple[str, Entry]]
    ) -> None:
        for field in sorted(entry.input_required - set(step["inputs"])):
            for pid, producer in producers:
                out = producer.output_fields.get(field)
                if out is not None and not compat_problems(out, entry.input_fields[field]):
                    step["inputs"][field] = {"ref": f"{pid}.output.{field}"}
                    break
            else:
                raise CannotPlan(
                    f"cannot plan {entry.name}: it needs input {field!r}, which the goal does "
                    f"not give and no earlier step produces; run it with "
                    f"`turing exec {entry.name} --input ...`"
                )


def _refuse_conditions(clause: Clause, entry: Entry) -> None:
    """A condition the planner cannot express, dropped, would run the step on more rows than
    asked (and pay for them): refuse, naming it and saying how to express it."""
    doc = set(entry.document())
    found = [*clause.conditions]
    found += [q for q in clause.qualifiers if not set(terms(q)) <= doc]
    if not found:
        return
    what = ", ".join(repr(c) for c in dict.fromkeys(found))
    if entry.filters:
        declared = "; ".join(
            f"{f.name} ({f.column} {f.op} {f.type}" + (f": {f.description})" if f.description
                                                        else ")")
            for f in entry.filters.values()
        )  # fmt: skip
        how = (
            f"{entry.name}'s source declares these filters: {declared}. Give the value in a "
            "plan file (for_each.filters; `turing plan --file plan.json`) or let a model plan "
            "it (`turing plan --model ACTOR`)"
        )
    elif entry.has_source:
        how = (
            f"{entry.name}'s source declares no filter for it: declare one on its Source "
            "(filters={...: SourceFilter(column, op, type)}), then give the value in a plan "
            "file (for_each.filters; `turing plan --file plan.json`) or let a model plan it "
            "(`turing plan --model ACTOR`)"
        )
    else:
        how = (
            f"{entry.name} has no source to narrow: it runs once on the input it is given "
            f"(`turing exec {entry.name} --input ...`)"
        )
    raise CannotPlan(
        f"cannot plan {clause.text!r}: the offline planner cannot express the condition "
        f"{what} (it understands time phrases and counts only), and without it "
        f"{entry.name} would run on every row its source returns. A condition must be a "
        f"filter the workflow's source declares: {how}"
    )


def _flows(producer: Entry, consumer: Entry) -> bool:
    """Does some output field of `producer` fit an input field of `consumer`?"""
    for name, want in consumer.input_fields.items():
        if name == consumer.subject_key:
            continue  # the same subject is not data flowing from one to the other
        have = producer.output_fields.get(name)
        if have is not None and not compat_problems(have, want, f"$.{name}"):
            return True
    return False


def _data_flow_order(picks: list[tuple[Clause, Entry]]) -> list[tuple[int, list[int]]]:
    """Indexes in run order (producers first, else goal order), each with its producers."""
    producers = {
        i: [j for j, (_, p) in enumerate(picks) if j != i and _flows(p, c)]
        for i, (_, c) in enumerate(picks)
    }
    done: list[int] = []
    while len(done) < len(picks):
        ready = [i for i in range(len(picks)) if i not in done and set(producers[i]) <= set(done)]
        if not ready:
            names = ", ".join(picks[i][1].name for i in range(len(picks)) if i not in done)
            raise CannotPlan(f"cannot order {names}: each needs the other's output")
        done.append(ready[0])
    return [(i, producers[i]) for i in done]


def _count_field(entry: Entry) -> str | None:
    candidates = []
    for name, schema in entry.input_fields.items():
        if name == entry.subject_key or schema.get("type") != "integer":
            continue
        text = f"{name} {schema.get('description', '')}".lower()
        if any(word == name or word in text.split() for word in _COUNT_WORDS):
            candidates.append(name)
    return candidates[0] if len(candidates) == 1 else None


def _filters(entry: Entry, time: TimeRange | None, clause: Clause) -> dict[str, str]:
    if time is None:
        return {}
    out: dict[str, str] = {}
    for bound, ops in ((time.since, (">=", ">")), (time.before, ("<", "<="))):
        if bound is None:
            continue
        flt = _date_filter(entry, ops)
        if flt is None:
            raise CannotPlan(
                f"cannot apply {time.phrase!r} from {clause.text!r}: {entry.name}'s source "
                f"declares no date filter with {' or '.join(ops)} "
                f"(filters: {', '.join(entry.filters) or 'none'})"
            )
        out[flt.name] = bound.isoformat() + ("T00:00:00Z" if flt.type == "datetime" else "")
    return out


def _date_filter(entry: Entry, ops: tuple[str, ...]) -> Filter | None:
    for flt in entry.filters.values():
        if flt.op in ops and flt.type in ("date", "datetime"):
            return flt
    return None
