"""Only `turing.store` runs Turing's own SQL: no module outside src/turing/store/ calls
`.q(...)`, `.one(...)`, `.x(...)` or `.many(...)` with a query name (a string literal).

Sources and sinks run the user's SQL through `tx.sql(...)`, which is not a named query and
stays allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import turing

PACKAGE = Path(turing.__file__).parent
STORE = PACKAGE / "store"
NAMED_CALLS = {"q", "one", "x", "many"}


def named_query_calls(source: str) -> list[tuple[int, str, str]]:
    """(line, method, query name) of every `<expr>.q/one/x/many("name", ...)` call."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in NAMED_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.func.attr, node.args[0].value))
    return found


def test_the_check_sees_named_queries() -> None:
    source = 'with db.tx() as tx:\n    tx.x("extend_leases", owner=o)\n    t.q("a")\n'
    assert named_query_calls(source) == [(2, "x", "extend_leases"), (3, "q", "a")]
    assert named_query_calls('tx.sql("SELECT 1")\nq(x)\nrows.one(key)\n') == []


def test_no_named_sql_outside_the_store() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: .{method}({name!r})"
        for path in sorted(PACKAGE.rglob("*.py"))
        if STORE not in path.parents
        for line, method, name in named_query_calls(path.read_text("utf-8"))
    ]
    assert not offenders, "named SQL outside turing/store/:\n" + "\n".join(offenders)
