"""Shared concurrency and rate limits, enforced through the database.

N worker processes (on one SQLite file, or on many machines sharing one PostgreSQL
database) together never exceed a limit: not N times the limit, the classic per-worker
mistake. Every decision is taken inside one write transaction that holds the limits'
lock rows (PostgreSQL: `SELECT ... FOR UPDATE` on one `turing_limits` row per limit, in key
order; SQLite: `BEGIN IMMEDIATE` already serialises writers).

Specs and scopes
----------------
A rate is "requests per period" or "tokens per period": `"50/s"`, `"10/min"`, `"100/hour"`,
`"2000/day"`, `"100000 tokens/min"`, also `"200_000 tokens/5min"`. A concurrency limit is a
whole number: at most that many calls in flight. A limit applies to a scope: `global`,
`workflow:<name>`, `actor:<name>` (the actor's name in `[actors]`) or `provider:<url>` (the
provider's base URL, kept as scheme://host:port). `LimitKey(scope, limit)` is one limit on one
scope; `LimitKey.parse("actor:gpt", "500/min")`, `LimitKey.parse("global", 64)`.

In turing.toml (`LimitsConfig`):

    [limits.concurrency]
    global = 64
    "workflow:job_skills" = 8
    "actor:skills_extractor" = 4
    "provider:http://127.0.0.1:11434" = 2

    [limits.rate]
    "actor:gpt" = ["500/min", "200000 tokens/min"]   # one spec or a list
    "provider:https://api.openai.com" = "3000/min"
    "workflow:cv_import" = "2000/day"

A workflow may declare its own limits, on its scope `workflow:<name>`:

    Workflow("cv_import", ..., limits={"concurrency": 8, "rate": ["2000/day", "50/min"]})

`LimitsConfig.with_workflows({name: WorkflowLimits})` adds them to turing.toml's (the project
does this for every workflow it loads). Where both limit the same thing (concurrency, or
requests or tokens over the same period) the stricter wins: every declared limit holds.

`LimitsConfig.keys_for(workflow=..., actor=..., provider=...)` gives the keys one call is
subject to (global plus those of its workflow, actor and provider).

Semantics
---------
- Rate limits use a sliding window, not fixed windows: "50/s" means never more than 50 grants
  in ANY one-second window. Grants are recorded (time, amount) in `turing_limit_grants` and
  pruned as they leave their window. When a key is full, the answer is the exact time until
  enough of the earliest grants leave the window, so the caller sleeps precisely.
- Token limits: acquire with an estimate (`tokens=`), then `settle(permit, actual)` (or
  `release(permit, tokens_used=actual)`) corrects the record. With `tokens=0` a token key is
  granted while any of its budget is left. A request for more tokens than the limit raises
  `LimitUnsatisfiable`.
- Concurrency limits: a slot per permit in `turing_limit_slots`, held by the limiter's holder
  (the worker id) until `release`, with an expiry that `heartbeat()` renews. A dead worker's
  slots expire after `slot_ttl` and are free again.
- All or nothing: `acquire(keys)` takes every key at once or none. A task waiting for a limit
  therefore holds no concurrency slot, and one key at its limit never blocks acquisitions on
  other keys (on PostgreSQL, disjoint key sets do not even share a lock row).
- Timestamps come from `clock` (default `time.time`); workers on several machines need clocks
  in step (NTP). The recorded grants of a key stay in time order even if one worker's clock
  lags: a grant is never recorded earlier than the latest grant of its keys.
- Waiting is not first-come-first-served: a waiter that wakes first wins.

Use
---
    limiter = Limiter(db, holder=worker_id)                # one per process, unique holder
    beats = asyncio.create_task(limiter.keep_alive())      # heartbeat every slot_ttl / 3
    keys = config.limits.keys_for(workflow=w, actor=a, provider=base_url)
    permit = await limiter.acquire(keys, tokens=1500, timeout=60)
    try:
        response = await call_model(...)
    finally:
        await asyncio.to_thread(limiter.release, permit, tokens_used=response_tokens)
    ...
    beats.cancel(); limiter.release_all()                  # on shutdown

`try_acquire` is the non-blocking form (a `Permit` or a `Wait`); `acquire` sleeps for the
returned wait (bounded by `max_sleep`), and a release in the same process wakes waiters on
concurrency and token limits at once. A cancelled `acquire` gives back whatever its database
thread was granted. With no keys, nothing touches the database.

Budgets per calendar period (`[limits.budget]`: `"workflow:job_skills" = "5 USD/day"`) are
not rates: see `turing.limits.periods` (specs, UTC periods) and `turing.limits.spending`
(reserve-then-settle through the database, shared by every worker).
"""

from turing.limits.config import LimitsConfig, WorkflowLimits
from turing.limits.limiter import (
    Limiter,
    LimitTimeout,
    LimitUnsatisfiable,
    Permit,
    Wait,
)
from turing.limits.spec import (
    Concurrency,
    Limit,
    LimitError,
    LimitKey,
    LimitSpecError,
    Rate,
    parse_concurrency,
    parse_limit,
    parse_rate,
    parse_scope,
    provider_scope,
)

__all__ = [
    "Concurrency",
    "Limit",
    "LimitError",
    "LimitKey",
    "LimitSpecError",
    "LimitTimeout",
    "LimitUnsatisfiable",
    "Limiter",
    "LimitsConfig",
    "Permit",
    "Rate",
    "Wait",
    "WorkflowLimits",
    "parse_concurrency",
    "parse_limit",
    "parse_rate",
    "parse_scope",
    "provider_scope",
]
