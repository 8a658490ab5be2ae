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

if TYPE_CHECKING:
    from ..answer import Answer, Workflow

__all__ = ["answer_markdown", "workflow_mermaid"]


def answer_markdown(answer: Answer) -> str:
    """The three numbered sections, as the platform's prompt asks for them."""
    out = [f"**Question:** {_md(answer.question)}", ""]
    if answer.provenance.offline:
        out += ["> Written offline by the deterministic stub backend from the retrieved "
                "sources, without a language model.", ""]
    out += ["## 1. Task", "", _md(answer.task.statement), ""]
    out += ["## 2. Workflow", ""]
    if answer.workflow and answer.answerable:
        flow = answer.workflow
        chain = " → ".join(
            [f"**Input:** {_md(flow.input)}"]
            + [f"**{_md(s.model)}**" for s in flow.steps]
            + [f"**Output:** {_md(flow.output)}"]
        )
        out += [chain, ""]
        for n, step in enumerate(flow.steps, start=1):
            out.append(f"{n}. **{_md(step.model)}**: takes {_md(step.input)}; "
                       f"{_md(step.action)}; gives {_md(step.output)}.")
        out += ["", "```mermaid", workflow_mermaid(flow), "```", ""]
    else:
        out += [_md(answer.note) or "The provided sources do not describe a workflow for "
                "this question.", ""]
    out += ["## 3. References", ""]
    if not answer.references:
        out.append("No provided source supports an answer to this question.")
    for ref in answer.references:
        links = [markdown_link("Paper", ref.paper_url) if ref.paper_url else "",
                 markdown_link("GitHub", ref.github_url) if ref.github_url else ""]
        kind = "recommended model" if ref.role is Role.MODEL else "paper"
        out.append(f"- {_md(ref.label)} **{_md(ref.title)}** ({kind}): {_md(ref.why)} "
                   + " · ".join(link for link in links if link))
    if answer.note and (answer.answerable or answer.workflow):
        # An answerable answer's note (the language it is written in, a caveat) would
        # otherwise be in the JSON only.
        out += ["", f"*Note:* {_md(answer.note)}" if answer.answerable else _md(answer.note)]
    if answer.plan is not None and answer.plan.sources:
        out += ["", f"*Why these sources:* {_md(answer.plan.why_line())}"]
    return "\n".join(out).rstrip() + "\n"


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
