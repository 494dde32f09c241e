"""Charts and plan graphs drawn on the server as SVG strings: no JavaScript, no chart
library, nothing fetched by the browser. Every label is escaped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from turing.stats import Percentiles
from turing.store.browse import CostBucket

_FONT = "font-family='inherit' font-size='12'"
STATUS_COLOURS = {
    "succeeded": "#2f9e44",
    "failed": "#e03131",
    "running": "#1c7ed6",
    "pending": "#adb5bd",
    "review": "#f08c00",
    "submitted": "#7048e8",
}


def _nice(value: float) -> float:
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    step = float(10 ** len(str(int(value)))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def latency_bars(rows: Sequence[tuple[str, Percentiles]], width: int = 1200) -> str:
    """One row per step: p50, p95 and p99 as nested bars on a shared millisecond axis."""
    if not rows:
        return ""
    label_w, row_h, top = 220, 26, 24
    top_ms = _nice(max(p.p99 for _, p in rows))
    plot_w = width - label_w - 70
    height = top + row_h * len(rows) + 8
    out = [
        f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        "role='img' aria-label='call latency percentiles per step' "
        "xmlns='http://www.w3.org/2000/svg'>"
    ]
    for i in range(5):
        x = label_w + plot_w * i / 4
        out.append(
            f"<line x1='{x:.0f}' y1='{top - 6}' x2='{x:.0f}' y2='{height - 4}' class='grid'/>"
        )
        out.append(
            f"<text x='{x:.0f}' y='{top - 10}' text-anchor='middle' {_FONT} class='axis'>"
            f"{top_ms * i / 4:,.0f} ms</text>"
        )
    for n, (label, p) in enumerate(rows):
        y = top + n * row_h
        out.append(
            f"<text x='{label_w - 8}' y='{y + 16}' text-anchor='end' {_FONT}>{escape(label)}</text>"
        )
        for value, cls, h in ((p.p99, "p99", 18), (p.p95, "p95", 12), (p.p50, "p50", 6)):
            w = max(1.0, plot_w * value / top_ms)
            out.append(
                f"<rect x='{label_w}' y='{y + 2 + (18 - h) / 2:.0f}' width='{w:.1f}' height='{h}' "
                f"class='{cls}'><title>{escape(label)} {cls} {value:,.0f} ms</title></rect>"
            )
        out.append(
            f"<text x='{label_w + plot_w * p.p99 / top_ms + 6:.0f}' y='{y + 16}' {_FONT} "
            f"class='axis'>{p.p50:,.0f} / {p.p95:,.0f} / {p.p99:,.0f}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def cost_columns(
    buckets: Sequence[CostBucket], bucket_s: float, since: float, until: float, width: int = 1200
) -> str:
    """Cost per time bucket as columns over the whole window (empty buckets stay empty),
    with the runs and failures of each in its title."""
    if not buckets:
        return ""
    height, left, bottom, top = 210, 60, 28, 14
    plot_w, plot_h = width - left - 12, height - top - bottom
    top_cost = _nice(max(b.cost for b in buckets))
    first = (since // bucket_s) * bucket_s
    slots = max(1, int((until - first) // bucket_s) + 1)
    col_w = plot_w / slots
    out = [
        f"<svg class='chart' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        "role='img' aria-label='cost over time' xmlns='http://www.w3.org/2000/svg'>"
    ]
    for i in range(5):
        y = top + plot_h * (1 - i / 4)
        out.append(f"<line x1='{left}' y1='{y:.0f}' x2='{width - 12}' y2='{y:.0f}' class='grid'/>")
        out.append(
            f"<text x='{left - 6}' y='{y + 4:.0f}' text-anchor='end' {_FONT} class='axis'>"
            f"{top_cost * i / 4:.4g}</text>"
        )
    fmt = "%H:%M" if bucket_s < 86_400 / 4 else "%m-%d %H:%M"
    for b in buckets:
        slot = min(slots - 1, max(0, round((b.start - first) / bucket_s)))
        h = plot_h * b.cost / top_cost
        x = left + slot * col_w
        stamp = datetime.fromtimestamp(b.start, UTC).strftime("%Y-%m-%d %H:%M")
        out.append(
            f"<rect x='{x + 1:.1f}' y='{top + plot_h - h:.1f}' width='{max(1.0, col_w - 2):.1f}' "
            f"height='{h:.1f}' class='cost'><title>{stamp} UTC: {b.cost:.4f} for {b.runs} "
            f"run(s), {b.failed} failed</title></rect>"
        )
    for slot in range(0, slots, max(1, slots // 6)):
        x = left + (slot + 0.5) * col_w
        label = datetime.fromtimestamp(first + slot * bucket_s, UTC).strftime(fmt)
        out.append(
            f"<text x='{x:.0f}' y='{height - 8}' text-anchor='middle' {_FONT} class='axis'>"
            f"{label}</text>"
        )
    out.append("</svg>")
    return "".join(out)


@dataclass(frozen=True)
class Node:
    id: str
    title: str
    after: tuple[str, ...]
    counts: Mapping[str, int]


def plan_graph(nodes: Sequence[Node]) -> str:
    """Steps in columns by depth (a step sits right of everything it waits for), arrows
    for dependencies, each box with its workflow's tasks as a stacked status bar."""
    if not nodes:
        return ""
    by_id = {n.id: n for n in nodes}
    depth: dict[str, int] = {}

    def level(node_id: str, seen: frozenset[str] = frozenset()) -> int:
        if node_id not in depth:
            deps = [d for d in by_id[node_id].after if d in by_id and d not in seen]
            depth[node_id] = 1 + max((level(d, seen | {node_id}) for d in deps), default=-1)
        return depth[node_id]

    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(level(n.id), []).append(n)
    box_w, box_h, gap_x, gap_y, pad = 210, 74, 60, 22, 12
    rows = max(len(c) for c in columns.values())
    width = pad * 2 + len(columns) * box_w + (len(columns) - 1) * gap_x
    height = pad * 2 + rows * box_h + (rows - 1) * gap_y
    where: dict[str, tuple[float, float]] = {}
    for col, members in sorted(columns.items()):
        for row, n in enumerate(members):
            where[n.id] = (pad + col * (box_w + gap_x), pad + row * (box_h + gap_y))
    out = [
        f"<svg class='plan' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        "role='img' aria-label='plan graph' "
        "xmlns='http://www.w3.org/2000/svg'><defs><marker id='arrow' viewBox='0 0 10 10' "
        f"refX='10' refY='5' markerWidth='7' markerHeight='7' orient='auto'>"
        f"<path d='M0,0 L10,5 L0,10 z' class='arrowhead'/></marker></defs>"
    ]
    for n in nodes:
        x2, y2 = where[n.id]
        for dep in n.after:
            if dep in where:
                x1, y1 = where[dep]
                a, b, mid = x1 + box_w, (y1 + box_h / 2, y2 + box_h / 2), gap_x / 2
                out.append(
                    f"<path d='M{a:.0f},{b[0]:.0f} C{a + mid:.0f},{b[0]:.0f} "
                    f"{x2 - mid:.0f},{b[1]:.0f} {x2:.0f},{b[1]:.0f}' class='edge' "
                    "marker-end='url(#arrow)'/>"
                )
    for n in nodes:
        x, y = where[n.id]
        total = sum(n.counts.values())
        done = n.counts.get("succeeded", 0)
        out.append(
            f"<g class='step'><rect x='{x}' y='{y}' width='{box_w}' height='{box_h}' rx='8'/>"
        )
        out.append(
            f"<text x='{x + 10}' y='{y + 20}' {_FONT} font-weight='600'>{escape(n.id)}</text>"
        )
        out.append(f"<text x='{x + 10}' y='{y + 37}' {_FONT} class='axis'>{escape(n.title)}</text>")
        bar_x, bar_w = x + 10, box_w - 20
        offset = 0.0
        for status in ("succeeded", "failed", "review", "submitted", "running", "pending"):
            k = n.counts.get(status, 0)
            if total and k:
                w = bar_w * k / total
                out.append(
                    f"<rect x='{bar_x + offset:.1f}' y='{y + 46}' width='{w:.1f}' height='8' "
                    f"fill='{STATUS_COLOURS[status]}'><title>{k} {status}</title></rect>"
                )
                offset += w
        if not total:
            out.append(f"<rect x='{bar_x}' y='{y + 46}' width='{bar_w}' height='8' class='empty'/>")
        out.append(
            f"<text x='{x + 10}' y='{y + 68}' {_FONT} class='axis'>"
            f"{done:,} of {total:,} done</text></g>"
        )
    out.append("</svg>")
    return "".join(out)
