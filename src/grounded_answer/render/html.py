"""The Answer as HTML: a standalone page with its workflow graph (:mod:`.svg`).

One rule makes this safe: every text that came from a model or a source record goes
through :func:`._escape.safe_text`, which removes any link the answer is not allowed to
hold and then escapes it, so it can never become markup. The only ``href`` values are the source
records' ``paper_url`` / ``github_url``, and only when they are among the answer's
allowed links. The standalone page carries a Content-Security-Policy that allows no
script and no network request at all, so even a rendering bug could not make it phone
home.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..grounding.links import link_key
from ..sources.corpus import Role
from ._escape import safe_text as _text
from ._escape import shorten as _shorten
from .svg import workflow_svg

if TYPE_CHECKING:
    from ..answer import Answer

__all__ = ["STATIC_DIR", "PlanRow", "PlanView", "answer_html", "plan_view", "stylesheet"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Relevance grades of the evidence plan, best first, with the words the page shows.
RELEVANCE = {
    "recommended": "recommended",
    "relevant": "relevant",
    "borderline": "borderline",
    "not_relevant": "not relevant",
}

@dataclass(frozen=True)
class PlanRow:
    """One source of the evidence plan, as shown: title, role, grade and the reason."""

    source_id: str
    title: str
    role: str
    relevance: str
    reason: str
    label: str = ""


@dataclass(frozen=True)
class PlanView:
    """The evidence plan ("why these sources") reduced to what the renderings show."""

    rows: tuple[PlanRow, ...]
    answerable: bool | None
    verdict: str


def plan_view(plan: Any) -> PlanView | None:
    """Read an evidence plan (a pydantic model or its JSON), or None if there is none.

    The plan's rows are the list whose items carry a ``relevance``; its verdict has
    ``answerable`` and ``reason``. Reading by those field names keeps this module
    independent of how the plan model names its list.
    """
    if plan is None:
        return None
    data = plan.model_dump(mode="json") if hasattr(plan, "model_dump") else plan
    if not isinstance(data, Mapping):
        return None
    rows: list[PlanRow] = []
    for value in data.values():
        if isinstance(value, list) and value and all(
            isinstance(item, Mapping) and "relevance" in item for item in value
        ):
            rows = [
                PlanRow(
                    source_id=str(item.get("source_id", "")),
                    title=str(item.get("title") or item.get("source_id", "")),
                    role=str(item.get("role", "")),
                    relevance=str(item.get("relevance", "")),
                    reason=str(item.get("reason", "")),
                    label=str(item.get("label") or ""),
                )
                for item in value
            ]
            break
    verdict = data.get("verdict")
    answerable = reason = None
    if isinstance(verdict, Mapping):
        answerable = verdict.get("answerable")
        reason = verdict.get("reason")
    if not rows and reason is None:
        return None
    return PlanView(
        rows=tuple(rows),
        answerable=answerable if isinstance(answerable, bool) else None,
        verdict=str(reason or ""),
    )


@cache
def stylesheet() -> str:
    """The CSS shared by the web page and the standalone file."""
    return (STATIC_DIR / "style.css").read_text(encoding="utf-8")


def answer_html(answer: Answer) -> str:
    """The answer as one self-contained HTML document (inline CSS and SVG, no script)."""
    allowed = frozenset(link_key(link) for link in answer.allowed_links)

    def t(value: str) -> str:
        return _text(value, allowed)

    labels = {ref.source_id: ref.label for ref in answer.references}
    out = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No script, no fetch, no frame: the file is a document, nothing else.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">",
        '<meta name="referrer" content="no-referrer">',
        f"<title>{t(_shorten(answer.question, 90))} · grounded-answer</title>",
        f"<style>\n{stylesheet()}</style>",
        "</head>",
        '<body class="standalone">',
        '<main class="answer">',
        '<header class="question-block">',
        '<p class="eyebrow">Question</p>',
        f'<h1 class="question">{t(answer.question)}</h1>',
    ]
    if answer.provenance.offline:
        out.append('<p class="notice">Written offline by the deterministic stub backend from '
                   "the retrieved sources, without a language model.</p>")
    if not answer.answerable:
        out.append('<p class="notice warn">The provided sources do not fully answer this '
                   "question.</p>")
    out.append("</header>")

    task_sources = ", ".join(labels.get(sid, sid) for sid in answer.task.source_ids)
    out += [
        '<section class="card" id="task">',
        '<h2><span class="num">1</span>Task</h2>',
        f'<p class="statement">{t(answer.task.statement)}</p>',
    ]
    if task_sources:
        out.append(f'<p class="cites">Supported by {t(task_sources)}</p>')
    out.append("</section>")

    out += ['<section class="card" id="workflow">', '<h2><span class="num">2</span>Workflow</h2>']
    if answer.workflow and answer.answerable:
        out.append(f'<figure class="graph">{workflow_svg(answer.workflow, labels, allowed)}'
                   "</figure>")
        out.append('<ol class="steps">')
        for step in answer.workflow.steps:
            label = labels.get(step.source_id, "")
            out.append(
                f'<li><span class="model">{t(step.model)}</span>'
                + (f' <span class="label">{t(label)}</span>' if label else "")
                + f'<span class="io"><b>takes</b> {t(step.input)}</span>'
                f'<span class="io"><b>does</b> {t(step.action)}</span>'
                f'<span class="io"><b>gives</b> {t(step.output)}</span></li>'
            )
        out.append("</ol>")
    else:
        note = answer.note or "The provided sources do not describe a workflow for this question."
        out.append(f'<p class="statement">{t(note)}</p>')
    out.append("</section>")

    out += ['<section class="card" id="references">',
            '<h2><span class="num">3</span>References</h2>']
    if not answer.references:
        out.append('<p class="statement">No provided source supports an answer to this '
                   "question.</p>")
    else:
        out.append('<ol class="refs">')
        for ref in answer.references:
            kind = "recommended model" if ref.role is Role.MODEL else "paper"
            links = [
                _link(url, name, allowed)
                for url, name in ((ref.paper_url, "Paper"), (ref.github_url, "GitHub"))
                if url
            ]
            out.append(
                f'<li><span class="label">{t(ref.label)}</span>'
                f'<span class="title">{t(ref.title)}</span>'
                f'<span class="role">{kind}</span>'
                f'<p class="why">{t(ref.why)}</p>'
                f'<p class="links">{" ".join(link for link in links if link)}</p></li>'
            )
        out.append("</ol>")
    if not answer.answerable and answer.note and answer.workflow:
        out.append(f'<p class="statement">{t(answer.note)}</p>')
    out.append("</section>")

    plan = plan_view(getattr(answer, "plan", None))
    if plan is not None:
        out += _plan_html(plan, labels, t)

    out += _report_html(answer, t)
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


def _plan_html(
    plan: PlanView, labels: Mapping[str, str], t: Callable[[str], str]
) -> list[str]:
    out = ['<section class="card" id="plan">', "<h2>Why these sources</h2>"]
    if plan.verdict or plan.answerable is not None:
        verdict = {True: "Answerable", False: "Not answerable", None: "Verdict"}[plan.answerable]
        state = {True: "yes", False: "no", None: "unknown"}[plan.answerable]
        out.append(f'<p class="verdict {state}"><b>{verdict}.</b> {t(plan.verdict)}</p>')
    if plan.rows:
        out.append('<ul class="plan">')
        for row in plan.rows:
            grade = row.relevance if row.relevance in RELEVANCE else "unknown"
            label = row.label or labels.get(row.source_id, "")
            # The reason continues the title ("X is the recommended model; ..."): one line.
            out.append(
                f'<li class="{grade}"><span class="grade">'
                f"{t(RELEVANCE.get(row.relevance, row.relevance))}</span>"
                + (f'<span class="label">{t(label)}</span>' if label else "")
                + f'<span class="title">{t(row.title)}</span> '
                + f'<span class="reason">{t(row.reason)}</span></li>'
            )
        out.append("</ul>")
    out.append("</section>")
    return out


def _report_html(answer: Answer, t: Callable[[str], str]) -> list[str]:
    report = answer.validation
    facts = [
        f"{report.attempts} model call(s), "
        + ("valid at the first try" if report.valid_first_try else f"policy {report.policy}"),
    ]
    out = ['<details class="card report" id="validation">',
           "<summary>How this answer was checked</summary>", "<ul>"]
    out += [f"<li>{t(check)}</li>" for check in report.checks]
    out.append("</ul>")
    for title, items in (("Repaired", report.repaired), ("Dropped", report.dropped),
                         ("Unresolved", report.unresolved), ("Withheld", report.withheld)):
        if items:
            out.append(f"<p><b>{title}:</b></p><ul>")
            out += [f"<li>{t(item)}</li>" for item in items]
            out.append("</ul>")
    prov = answer.provenance
    timings = ", ".join(f"{name} {value * 1000:.0f} ms" for name, value in prov.timings.items())
    facts.append(f"backend {prov.backend} ({prov.model})")
    facts.append(f"corpus {prov.corpus}, index {prov.index_status}")
    if timings:
        facts.append(timings)
    out.append(f'<p class="facts">{t(" · ".join(facts))}</p>')
    out.append("</details>")
    return out


def _link(url: str, name: str, allowed: frozenset[str]) -> str:
    # The Answer's validator already holds url to its allowed links; this is the renderer's
    # own check, so a bug elsewhere cannot turn into a foreign href.
    if link_key(url) not in allowed or not url.lower().startswith(("http://", "https://")):
        return ""
    return (f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer nofollow" '
            f'target="_blank">{name}</a>')


