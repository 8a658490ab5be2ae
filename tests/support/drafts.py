"""Answer drafts and answer checks that several test modules share."""

from __future__ import annotations

import json
from typing import Any

from grounded_answer import Answer
from grounded_answer.grounding.links import find_links, link_key


def good_draft(**changes: Any) -> str:
    draft: dict[str, Any] = {
        "answerable": True,
        "task": {"statement": "Image deblurring with S1.", "source_ids": ["S1"]},
        "workflow": {
            "input": "a blurry photo",
            "steps": [
                {
                    "source_id": "S1",
                    "input": "blurry photo",
                    "action": "removes blur",
                    "output": "sharp photo",
                }
            ],
            "output": "a sharp photo",
        },
        "references": [{"source_id": "S1", "why": "The recommended deblurring model."}],
        "note": "",
    }
    draft.update(changes)
    return json.dumps(draft)


def foreign_links(answer: Answer) -> list[str]:
    allowed = {link_key(link) for link in answer.allowed_links}
    texts = [answer.to_json(), answer.to_markdown()]
    return [m.text for t in texts for m in find_links(t) if m.key not in allowed]


def draft(
    statement: str = "The user wants to deblur a low-quality photo (S1).",
    *,
    step_source: str = "S1",
    ref_source: str = "S1",
    why: str = "S1 is the recommended deblurring model.",
) -> str:
    """A JSON answer in the shape of AnswerDraft; valid for the seed bundle by default."""
    return json.dumps(
        {
            "answerable": True,
            "task": {"statement": statement, "source_ids": ["S1"]},
            "workflow": {
                "input": "a blurry photo",
                "steps": [
                    {
                        "source_id": step_source,
                        "input": "the blurry photo",
                        "action": "removes motion blur at several scales",
                        "output": "a sharp photo",
                    }
                ],
                "output": "a sharp photo",
            },
            "references": [{"source_id": ref_source, "why": why}],
            "note": "",
        }
    )


GOOD = draft()
