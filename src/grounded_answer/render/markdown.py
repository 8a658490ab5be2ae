"""The Answer as Markdown (the three numbered sections) and its workflow as Mermaid.

Every text that came from a model or a source record is escaped
(:func:`grounded_answer.grounding.markdown.escape`), so only the links rendered from
source records are links; the Answer's own guard checks the result once more.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..grounding.links import cut_outside_links
from ..grounding.markdown import escape, markdown_link
from ..sources.corpus import Role
from ..writing.labels import Labels, english, labels_for

if TYPE_CHECKING:
    from ..answer import Answer, Workflow

__all__ = ["answer_labels", "answer_markdown", "workflow_mermaid"]


def answer_markdown(answer: Answer) -> str:
    """The three numbered sections, as the platform's prompt asks for them.

    The words the library writes itself are in the answer's language
    (:mod:`grounded_answer.writing.labels`); a sentence that stayed in English in an answer
    in another language is marked as such.
    """
    words = answer_labels(answer)
    english = set(answer.validation.untranslated) if words.language != "en" else set()

    def said(text: str, *slots: str) -> str:
        """``text`` escaped, marked when any of ``slots`` stayed in English."""
        mark = f" *({words.in_english})*" if english & set(slots) else ""
        return _md(text) + mark

    out = [f"**{words.question}:** {_md(answer.question)}", ""]
    if answer.provenance.offline:
        out += [f"> {words.offline}", ""]
    out += [f"## 1. {words.task}", "", said(answer.task.statement, "task"), ""]
    out += [f"## 2. {words.workflow}", ""]
    if answer.workflow and answer.answerable:
        flow = answer.workflow
        chain = " → ".join(
            [f"**{words.input}:** {_md(flow.input)}"]
            + [f"**{_md(s.model)}**" for s in flow.steps]
            + [f"**{words.output}:** {_md(flow.output)}"]
        )
        out += [chain, ""]
        for n, step in enumerate(flow.steps, start=1):
            io, action = f"steps[{n - 1}].io", f"steps[{n - 1}].action"
            out.append(
                f"{n}. **{_md(step.model)}**: {words.takes} {_md(step.input)}; "
                f"{said(step.action, action)}; {words.gives} {_md(step.output)}."
                + (f" *({words.in_english})*" if io in english else "")
            )
        out += ["", "```mermaid", workflow_mermaid(flow), "```", ""]
    else:
        out += [said(answer.note, "note") if answer.note else words.no_workflow, ""]
    out += [f"## 3. {words.references}", ""]
    if not answer.references:
        out.append(words.no_references)
    for n, ref in enumerate(answer.references):
        links = [
            markdown_link(words.paper_link, ref.paper_url) if ref.paper_url else "",
            markdown_link("GitHub", ref.github_url) if ref.github_url else "",
        ]
        kind = words.recommended_model if ref.role is Role.MODEL else words.paper
        why = said(ref.why, f"why[{n}]")
        out.append(
            f"- {_md(ref.label)} **{_md(ref.title)}** ({kind}): {why} "
            + " · ".join(link for link in links if link)
        )
    if answer.note and (answer.answerable or answer.workflow):
        # An answerable answer's note (the language it is written in, a caveat) would
        # otherwise be in the JSON only.
        note = said(answer.note, "note")
        out += ["", f"*{words.note}:* {note}" if answer.answerable else note]
    if answer.plan is not None and answer.plan.sources:
        # The plan's reasons are the library's own English sentences.
        mark = f" *({words.in_english})*" if words.language != "en" else ""
        out += ["", f"*{words.why_sources}:* {_md(answer.plan.why_line())}{mark}"]
    return "\n".join(out).rstrip() + "\n"


def answer_labels(answer: Answer) -> Labels:
    """The words an answer's fixed parts are written in: its prose's language, if known."""
    if answer.provenance.offline:
        return english()
    return labels_for(answer.validation.language) or english()


def workflow_mermaid(workflow: Workflow) -> str:
    """A Mermaid flowchart of :meth:`to_graph`."""
    graph = workflow.to_graph()
    lines = ["flowchart LR"]
    shapes = {"input": ("[/", "/]"), "model": ("[", "]"), "output": ("[\\", "\\]")}
    for node in graph["nodes"]:
        left, right = shapes[node["type"]]
        lines.append(f'    {node["id"]}{left}"{_mermaid_text(node["label"])}"{right}')
    for edge in graph["edges"]:
        lines.append(f'    {edge["from"]} -->|"{_mermaid_text(edge["label"])}"| {edge["to"]}')
    return "\n".join(lines)


def _md(text: str) -> str:
    """Escape everything that could make Markdown syntax (see grounding.markdown)."""
    return escape(text)


def _mermaid_text(text: str) -> str:
    # Quotes, brackets and pipes end a label; "#60;" is Mermaid's entity syntax.
    # Parentheses are plain text inside a quoted label, so "(vocals, instruments)" stays.
    label = re.sub(r"[\"\[\]{}<>|`#&\\]", " ", " ".join(text.split()))
    return cut_outside_links(label, 80).strip() or "-"
