"""Operations: the verbs people use on a running system, shared by the CLI and the
dashboard so both go through the same guarded store transitions and the same audit log.

    ops = Operations(orchestrator, who="alice")
    ops.retry([17, 18])              # failed -> pending, input re-read from the source
    ops.cancel([19], reason="duplicate posting")
    ops.requeue([20])                # finished -> run again on the current input
    ops.pause("job_skills", reason="prompt under revision"); ops.resume("job_skills")
    ops.approve(21)                  # the held output goes to its sink
    ops.approve(22, edited={...})    # validated against the output contract first
    ops.reject(23, "wrong company")  # failed, or reask=True: asked again with the comment

Each per-task verb takes many ids and says, for each id it did not act on, why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from turing.errors import TuringError
from turing.review import feedback
from turing.store.ops import OpsStore, ReviewItem
from turing.store.states import TaskStatus

if TYPE_CHECKING:
    from turing.orchestrator import Orchestrator
    from turing.store.db import Row, Tx
    from turing.workflow import Workflow


class OperationError(TuringError):
    """An action that cannot be done as asked (unknown task, invalid edit, sink failed)."""


@dataclass
class ActionResult:
    """What one verb did: the ids acted on, and why each other id was left alone."""

    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"done": self.done, "skipped": {str(k): v for k, v in self.skipped.items()}}


class Operations:
    """The verbs, acting as `who` (recorded with every action)."""

    def __init__(self, orchestrator: Orchestrator, who: str) -> None:
        if not who.strip():
            raise OperationError("say who is acting (a name: --as NAME, or the login name)")
        self.orch = orchestrator
        self.who = who.strip()
        self.store = OpsStore(orchestrator.store.db)

    # ------------------------------------------------------------------ tasks
    def retry(self, task_ids: Iterable[int]) -> ActionResult:
        """Failed tasks back to pending, each with its subject's current input."""
        out = ActionResult()
        for task_id in task_ids:
            task = self._task(task_id, out)
            if task is None:
                continue
            if task["status"] != TaskStatus.FAILED:
                out.skipped[task_id] = f"{task['status']}, not failed"
                continue
            summary = self.orch.retry_failed(task_id=task_id)
            if summary.requeued:
                out.done.append(task_id)
                self.store.record(self.who, "retry", workflow=task["workflow"], task_id=task_id)
            elif summary.dropped:
                out.skipped[task_id] = "dropped: the source no longer returns its subject"
            else:
                out.skipped[task_id] = "not its subject's newest task, or the subject is open"
        return out

    def cancel(self, task_ids: Iterable[int], reason: str = "") -> ActionResult:
        """Waiting tasks (pending, retry-waiting, held for review) fail as cancelled."""
        ids = list(dict.fromkeys(task_ids))
        done = self.store.cancel(ids, self.who, reason)
        out = ActionResult(done=done)
        for task_id in set(ids) - set(done):
            task = self.orch.store.task(task_id)
            out.skipped[task_id] = (
                "no such task" if task is None else f"{task['status']}: only waiting tasks"
            )
        return out

    def requeue(
        self, task_ids: Iterable[int], new_input: Mapping[str, Any] | None = None
    ) -> ActionResult:
        """Finished tasks (succeeded or failed) run again: on `new_input` when given
        (validated against the input contract), else on the subject's current input read
        from the source. A succeeded task's sink then writes again."""
        out = ActionResult()
        for task_id in task_ids:
            task = self._task(task_id, out)
            if task is None:
                continue
            if task["status"] not in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
                out.skipped[task_id] = f"{task['status']}: only finished tasks"
                continue
            wf = self._workflow(task["workflow"])
            data = self._input_for(wf, task, new_input)
            if data is None:
                out.skipped[task_id] = "the source no longer returns its subject"
            elif self.store.requeue(task_id, data, self.who, workflow=wf.name):
                out.done.append(task_id)
            else:
                out.skipped[task_id] = "not its subject's newest task, or the subject is open"
        return out

    # ------------------------------------------------------------------ workflows
    def pause(self, workflow: str, reason: str = "") -> bool:
        """Stop every worker claiming `workflow`'s tasks (running ones finish)."""
        self._workflow(workflow)
        return self.store.pause(workflow, self.who, reason)

    def resume(self, workflow: str) -> bool:
        return self.store.resume(workflow, self.who)

    def paused(self) -> list[Row]:
        return self.store.paused()

    # ------------------------------------------------------------------ review
    def reviews(
        self, workflows: list[str] | None = None, *, after: int = 0, limit: int = 50
    ) -> list[ReviewItem]:
        return self.store.reviews(workflows, after=after, limit=limit)

    def review(self, task_id: int) -> ReviewItem:
        item = self.store.review(task_id)
        if item is None:
            raise OperationError(f"task {task_id} is not held for review")
        return item

    def approve(
        self, task_id: int, edited: Mapping[str, Any] | None = None, comment: str = ""
    ) -> bool:
        """The held output (or the reviewer's edit of it, validated first) goes to the
        workflow's sink in the transaction that marks the task done. False: someone else
        decided it first. A sink that fails leaves the task held (OperationError)."""
        item = self.review(task_id)
        wf = self._workflow(item.workflow)
        output: Any = item.output
        detail: dict[str, Any] = {"comment": comment} if comment else {}
        if edited is not None:
            output = self._validated_edit(wf, edited)
            detail |= {"before": item.output, "after": output}
        write = self._sink_writer(wf, output)
        try:
            return self.store.approve(task_id, self.who, write, detail=detail)
        except TuringError:
            raise
        except Exception as exc:
            raise OperationError(
                f"task {task_id}: the sink failed, the task stays held: {type(exc).__name__}: {exc}"
            ) from exc

    def reject(self, task_id: int, reason: str, *, reask: bool = False) -> bool:
        """Fail the held task with `reason`, or (reask) send it back to the model with
        `reason` as the reviewer's comment on the held answer."""
        if not reason.strip():
            raise OperationError("say why (the reason is recorded and, for a re-ask, sent)")
        item = self.review(task_id)
        if reask:
            note = feedback(item.output, reason, self.who)
            return self.store.reask(task_id, self.who, note, workflow=item.workflow, comment=reason)
        return self.store.reject(task_id, self.who, reason, workflow=item.workflow)

    def actions(self, *, task_id: int | None = None, limit: int = 50) -> list[Row]:
        return self.store.actions(task_id=task_id, limit=limit)

    # ------------------------------------------------------------------ helpers
    def _task(self, task_id: int, out: ActionResult) -> Row | None:
        task = self.orch.store.task(task_id)
        if task is None:
            out.skipped[task_id] = "no such task"
        return task

    def _workflow(self, name: str) -> Workflow:
        return self.orch.registry.get(name)  # unknown: a clear error naming close ones

    def _input_for(
        self, wf: Workflow, task: Row, new_input: Mapping[str, Any] | None
    ) -> Mapping[str, Any] | None:
        if new_input is not None:
            problems = wf.input.violations(dict(new_input))
            if problems:
                raise OperationError(
                    f"input for {wf.name}: " + "; ".join(f"{v.path}: {v.message}" for v in problems)
                )
            return new_input
        return self.orch.current_input(wf, task["subject"], json.loads(task["input"]))

    @staticmethod
    def _validated_edit(wf: Workflow, edited: Mapping[str, Any]) -> Any:
        value = wf.output.with_defaults(dict(edited))
        problems = wf.output.violations(value)
        if problems:
            raise OperationError(
                "the edited output breaks the contract: "
                + "; ".join(f"{v.path}: {v.message}" for v in problems[:5])
            )
        return value

    @staticmethod
    def _sink_writer(wf: Workflow, output: Any) -> Any:
        sink = wf.sink
        if sink is None or not isinstance(output, Mapping):
            return None

        def write(tx: Tx, row: Mapping[str, Any]) -> None:
            info = {"subject": row["subject"], "id": row["id"], "input": json.loads(row["input"])}
            sink.write(tx, wf.bindable(output), info)

        return write
