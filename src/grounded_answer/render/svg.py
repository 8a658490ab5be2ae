"""The workflow drawn as an SVG graph: input, one node per model step, output.

The graph is drawn here, on the server, rather than by Mermaid in the browser: the SVG is
a few kilobytes where Mermaid's browser build is megabytes (every ``--format html`` file
of a batch run would carry it, or depend on a side file); it needs no JavaScript, so it
works in the standalone file, offline, under a CSP that allows no script; and its labels
are escaped by one function (:func:`._escape.safe_text`) instead of by Mermaid's own label
syntax. The web page shows the same SVG as an ``<img>``, where an SVG can neither run
script nor load anything.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ._escape import safe_text as _text
from ._escape import shorten as _shorten

if TYPE_CHECKING:
    from ..answer import Workflow

__all__ = ["workflow_svg"]


def workflow_svg(
    workflow: Workflow,
    labels: Mapping[str, str] | None = None,
    allowed: Iterable[str] = (),
    *,
    standalone: bool = False,
) -> str:
    """The workflow as a top-to-bottom SVG graph: input, one node per model step, output.

    Args:
        workflow: The answer's workflow.
        labels: Source id -> the answer's marker (S1, S2...), shown on model nodes.
        allowed: Link keys the texts may keep; any other link is removed.
        standalone: Add the XML namespace, for an SVG file or a ``data:`` image; inline
            in HTML it is implied.

    """
    keys = frozenset(allowed)
    labels = labels or {}
    width, margin, gap = 640, 24, 56
    left, box = margin + 18, width - 2 * margin
    graph = workflow.to_graph()
    parts: list[str] = []
    spans: list[tuple[int, int]] = []  # (top, bottom) of each node
    y = margin
    for node in graph["nodes"]:
        kind = node["type"]
        if kind == "model":
            label = labels.get(node["source_id"])
            tag = f"MODEL · {label}" if label else "MODEL"
            title, body = _lines(node["label"], 58, 2), _lines(node.get("action", ""), 72, 3)
        else:
            tag, title, body = kind.upper(), [], _lines(node["label"], 72, 3)
        height = 42 + 20 * len(title) + 18 * len(body)
        parts.append(
            f'<g class="node {kind}"><rect x="{margin}" y="{y}" width="{box}" '
            f'height="{height}" rx="{8 if kind == "model" else 22}"/>'
        )
        baseline = y + 25
        parts.append(f'<text class="tag" x="{left}" y="{baseline}">{_text(tag, keys)}</text>')
        for css, step, lines in (("name", 20, title), ("body", 18, body)):
            for line in lines:
                baseline += step
                parts.append(
                    f'<text class="{css}" x="{left}" y="{baseline}">{_text(line, keys)}</text>'
                )
        parts.append("</g>")
        spans.append((y, y + height))
        y += height + gap
    total = y - gap + margin
    center = width // 2
    seen = [node["label"].casefold() for node in graph["nodes"]]
    for n, edge in enumerate(graph["edges"]):
        top, bottom = spans[n][1], spans[n + 1][0]
        parts.append(
            f'<line class="edge" x1="{center}" y1="{top + 2}" x2="{center}" '
            f'y2="{bottom - 8}" marker-end="url(#arrow)"/>'
        )
        # An edge label that repeats a node it joins tells the reader nothing new.
        label = edge["label"]
        if label and label.casefold() not in (seen[n], seen[n + 1]):
            parts.append(
                f'<text class="edge-label" x="{center + 14}" '
                f'y="{(top + bottom) // 2 + 4}">'
                f"{_text(_shorten(label, 48), keys)}</text>"
            )
    summary = _text(_shorten(" → ".join(node["label"] for node in graph["nodes"]), 300), keys)
    namespace = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    return (
        f'<svg{namespace} class="workflow-graph" viewBox="0 0 {width} {total}" '
        f'width="{width}" height="{total}" role="img" aria-label="{summary}">'
        f"<title>{summary}</title><style>{_SVG_STYLE}</style>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="arrowhead"/></marker></defs>' + "".join(parts) + "</svg>"
    )


_SVG_STYLE = (
    "text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Liberation Sans',"
    "sans-serif;fill:#1f2937}"
    ".node rect{stroke-width:1.5}"
    ".input rect{fill:#eef2ff;stroke:#6366f1}"
    ".model rect{fill:#ffffff;stroke:#4338ca}"
    ".output rect{fill:#ecfdf5;stroke:#059669}"
    ".tag{font-size:11px;font-weight:600;letter-spacing:.08em;fill:#6b7280}"
    ".name{font-size:16px;font-weight:650}"
    ".body{font-size:13.5px;fill:#374151}"
    ".edge{stroke:#9ca3af;stroke-width:2}"
    ".arrowhead{fill:#9ca3af}"
    ".edge-label{font-size:12px;font-style:italic;fill:#6b7280}"
)


def _lines(text: str, width: int, limit: int) -> list[str]:
    lines = textwrap.wrap(" ".join(text.split()), width, break_long_words=True)
    if len(lines) > limit:
        lines = [*lines[: limit - 1], _shorten(" ".join(lines[limit - 1 :]), width)]
    return lines
