"""Renderings of an Answer: Markdown and Mermaid, a standalone HTML page, the SVG graph.

The renderers know the Answer only as a type (they never import it at run time), so they
sit below :mod:`grounded_answer.answer` in the import graph and the Answer's ``to_*``
methods can use them. ``static/`` holds the web page the service serves and the CSS it
shares with the standalone page.
"""

from .html import STATIC_DIR, PlanRow, PlanView, answer_html, plan_view, stylesheet
from .markdown import answer_markdown, workflow_mermaid
from .svg import workflow_svg

__all__ = [
    "STATIC_DIR",
    "PlanRow",
    "PlanView",
    "answer_html",
    "answer_markdown",
    "plan_view",
    "stylesheet",
    "workflow_mermaid",
    "workflow_svg",
]
