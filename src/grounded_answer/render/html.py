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
from ..writing.labels import Labels, english
from ._escape import safe_text as _text
from ._escape import shorten as _shorten
from .markdown import answer_labels
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
    #: The language model's reading, when one judged the source: (who decided, P(yes)).
    judged: tuple[str, float] | None = None


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
        if (
            isinstance(value, list)
            and value
            and all(isinstance(item, Mapping) and "relevance" in item for item in value)
        ):
            rows = [
                PlanRow(
                    source_id=str(item.get("source_id", "")),
                    title=str(item.get("title") or item.get("source_id", "")),
                    role=str(item.get("role", "")),
                    relevance=str(item.get("relevance", "")),
                    reason=str(item.get("reason", "")),
                    label=str(item.get("label") or ""),
                    judged=_judged(item.get("judgement")),
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


def _judged(value: Any) -> tuple[str, float] | None:
    """(who decided, the model's P(yes)) from a plan row's judgement, if it has one."""
    if not isinstance(value, Mapping):
        return None
    decided, score = value.get("decided_by"), value.get("score")
    if decided not in ("plan", "model") or not isinstance(score, int | float):
        return None
    return str(decided), float(score)


@cache
def stylesheet() -> str:
    """The CSS shared by the web page and the standalone file."""
    return (STATIC_DIR / "style.css").read_text(encoding="utf-8")


def answer_html(answer: Answer) -> str:
    """The answer as one self-contained HTML document (inline CSS and SVG, no script).

    The library's own words are in the answer's language; a sentence that stayed in
    English is marked, and tagged ``lang="en"`` for screen readers.
    """
    allowed = frozenset(link_key(link) for link in answer.allowed_links)
    words = answer_labels(answer)
    english_slots = set(answer.validation.untranslated) if words.language != "en" else set()

    def said(slot: str) -> str:
        return ' lang="en"' if slot in english_slots else ""

    def mark(slot: str) -> str:
        return (
            f' <span class="in-english">({_text(words.in_english, allowed)})</span>'
            if slot in english_slots
            else ""
        )

    def t(value: str) -> str:
        return _text(value, allowed)

    labels = {ref.source_id: ref.label for ref in answer.references}
    out = [
        "<!doctype html>",
        f'<html lang="{words.language}">',
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
        f'<p class="eyebrow">{t(words.question)}</p>',
        f'<h1 class="question">{t(answer.question)}</h1>',
    ]
    if answer.provenance.offline:
        out.append(f'<p class="notice">{t(words.offline)}</p>')
    if not answer.answerable:
        out.append(f'<p class="notice warn">{t(words.not_fully)}</p>')
    out.append("</header>")

    task_sources = ", ".join(labels.get(sid, sid) for sid in answer.task.source_ids)
    out += [
        '<section class="card" id="task">',
        f'<h2><span class="num">1</span>{t(words.task)}</h2>',
        f'<p class="statement"{said("task")}>{t(answer.task.statement)}{mark("task")}</p>',
    ]
    if task_sources:
        out.append(f'<p class="cites">{t(words.supported_by)} {t(task_sources)}</p>')
    out.append("</section>")

    out += [
        '<section class="card" id="workflow">',
        f'<h2><span class="num">2</span>{t(words.workflow)}</h2>',
    ]
    if answer.workflow and answer.answerable:
        out.append(
            f'<figure class="graph">{workflow_svg(answer.workflow, labels, allowed)}</figure>'
        )
        out.append('<ol class="steps">')
        for n, step in enumerate(answer.workflow.steps):
            label = labels.get(step.source_id, "")
            io, action = f"steps[{n}].io", f"steps[{n}].action"
            out.append(
                f'<li><span class="model">{t(step.model)}</span>'
                + (f' <span class="label">{t(label)}</span>' if label else "")
                + f'<span class="io"{said(io)}><b>{t(words.takes)}</b> {t(step.input)}</span>'
                f'<span class="io"{said(action)}><b>{t(words.does)}</b> {t(step.action)}'
                f"{mark(action)}</span>"
                f'<span class="io"{said(io)}><b>{t(words.gives)}</b> {t(step.output)}'
                f"{mark(io)}</span></li>"
            )
        out.append("</ol>")
    else:
        note = answer.note or words.no_workflow
        out.append(f'<p class="statement"{said("note")}>{t(note)}{mark("note")}</p>')
    out.append("</section>")

    out += [
        '<section class="card" id="references">',
        f'<h2><span class="num">3</span>{t(words.references)}</h2>',
    ]
    if not answer.references:
        out.append(f'<p class="statement">{t(words.no_references)}</p>')
    else:
        out.append('<ol class="refs">')
        for n, ref in enumerate(answer.references):
            kind = words.recommended_model if ref.role is Role.MODEL else words.paper
            links = [
                _link(url, t(name), allowed)
                for url, name in ((ref.paper_url, words.paper_link), (ref.github_url, "GitHub"))
                if url
            ]
            why = f"why[{n}]"
            out.append(
                f'<li><span class="label">{t(ref.label)}</span>'
                f'<span class="title">{t(ref.title)}</span>'
                f'<span class="role">{t(kind)}</span>'
                f'<p class="why"{said(why)}>{t(ref.why)}{mark(why)}</p>'
                f'<p class="links">{" ".join(link for link in links if link)}</p></li>'
            )
        out.append("</ol>")
    if not answer.answerable and answer.note and answer.workflow:
        out.append(f'<p class="statement"{said("note")}>{t(answer.note)}{mark("note")}</p>')
    out.append("</section>")

    plan = plan_view(getattr(answer, "plan", None))
    if plan is not None:
        out += _plan_html(plan, labels, t, words)

    out += _report_html(answer, t, words)
    out += ["</main>", "</body>", "</html>", ""]
    return "\n".join(out)


def _plan_html(
    plan: PlanView, labels: Mapping[str, str], t: Callable[[str], str], words: Labels | None = None
) -> list[str]:
    words = words or english()
    # The plan's reasons are the library's own English sentences.
    lang = ' lang="en"' if words.language != "en" else ""
    out = ['<section class="card" id="plan">', f"<h2>{t(words.why_sources)}</h2>"]
    if plan.verdict or plan.answerable is not None:
        verdict = {True: words.answerable, False: words.not_answerable, None: words.verdict}[
            plan.answerable
        ]
        state = {True: "yes", False: "no", None: "unknown"}[plan.answerable]
        out.append(
            f'<p class="verdict {state}"><b>{t(verdict)}.</b> '
            f"<span{lang}>{t(plan.verdict)}</span></p>"
        )
    if plan.rows:
        out.append('<ul class="plan">')
        for row in plan.rows:
            grade = row.relevance if row.relevance in RELEVANCE else "unknown"
            label = row.label or labels.get(row.source_id, "")
            # The reason continues the title ("X is the recommended model; ..."): one line.
            out.append(
                f'<li class="{grade}"><span class="grade">'
                f"{t(getattr(words, row.relevance, row.relevance))}</span>"
                + (f'<span class="label">{t(label)}</span>' if label else "")
                + f'<span class="title">{t(row.title)}</span> '
                + f'<span class="reason"{lang}>{t(row.reason)}</span>'
                + _judged_html(row, words, t)
                + "</li>"
            )
        out.append("</ul>")
    out.append("</section>")
    return out


def _judged_html(row: PlanRow, words: Labels, t: Callable[[str], str]) -> str:
    """Who decided about a source and the model's P(yes), when a model read it."""
    if row.judged is None:
        return ""
    decided, score = row.judged
    who = words.judged_by_model if decided == "model" else words.judged_by_plan
    return f'<span class="judged {decided}">{t(who)} · P(yes) {score:.2f}</span>'


def _report_html(answer: Answer, t: Callable[[str], str], words: Labels) -> list[str]:
    report = answer.validation
    facts = [
        f"{report.attempts} model call(s), "
        + ("valid at the first try" if report.valid_first_try else f"policy {report.policy}"),
    ]
    out = [
        '<details class="card report" id="validation">',
        f"<summary>{t(words.checked)}</summary>",
        "<ul>",
    ]
    out += [f"<li>{t(check)}</li>" for check in report.checks]
    out.append("</ul>")
    for title, items in (
        (words.repaired, report.repaired),
        (words.dropped, report.dropped),
        (words.unresolved, report.unresolved),
        (words.withheld, report.withheld),
    ):
        if items:
            out.append(f"<p><b>{t(title)}:</b></p><ul>")
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
    return (
        f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer nofollow" '
        f'target="_blank">{name}</a>'
    )
