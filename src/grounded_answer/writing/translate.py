"""An answer in another language: the offline draft translated line by line.

Under a JSON schema small models copy English rather than translate, so translation is one
plain-text call: every prose slot of the draft is a numbered line (:func:`translation_lines`)
and the reply's lines go back into their slots (:func:`apply_translation`). A line in the
wrong script, too long, or breaking a grounding rule stays English and is reported.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from ..grounding.draft import (
    ACTION_SLOT,
    IO_SLOT,
    NOTE_SLOT,
    TASK_SLOT,
    WHY_SLOT,
    AnswerDraft,
    GroundingContext,
)
from ..planning import EvidencePlan
from ..planning.language import in_language
from .guided import task_names

__all__ = ["apply_translation", "translation_lines"]


def translation_lines(draft: AnswerDraft) -> list[tuple[str, str]]:
    """Every prose slot of ``draft`` as (slot, text), in the order a translator sees them."""
    lines = [("task", draft.task.statement)]
    for n, step in enumerate(draft.workflow.steps if draft.workflow else []):
        lines += [(f"steps[{n}].{key}", getattr(step, key)) for key in ("input", "action",
                                                                         "output")]
    lines += [(f"why[{n}]", ref.why) for n, ref in enumerate(draft.references)]
    if draft.note:
        lines.append(("note", draft.note))
    return lines


def apply_translation(
    draft: AnswerDraft, text: str, grounding: GroundingContext, language: str,
    plan: EvidencePlan | None = None,
) -> tuple[AnswerDraft, list[str]]:
    """``draft`` with each slot replaced by its numbered translation line, where it passes.

    A line that is missing, too long, not in the language's script, or breaks a grounding
    rule leaves that slot in English, and the slot is named in the returned list. A
    translated task statement that no longer names the plan's task in English gets the
    English name after it, in parentheses: the term a reader looks up, and the name a
    rewrite must keep too.
    """
    terms = sorted(task_names(draft, plan), key=draft.task.statement.lower().find) \
        if plan is not None else []
    found = {int(m.group(1)): m.group(2).strip()
             for m in re.finditer(r"^\s*(\d{1,3})[.):]\s*(.+?)\s*$", text, re.M)}
    limits = {"task": TASK_SLOT, "note": NOTE_SLOT}
    kept: list[str] = []
    data = draft.model_dump()
    for number, (slot, _) in enumerate(translation_lines(draft), start=1):
        line = found.get(number, "")
        adapter = limits.get(slot) or (WHY_SLOT if slot.startswith("why") else IO_SLOT if (
            slot.endswith((".input", ".output"))) else ACTION_SLOT)
        try:
            value = adapter.validate_python(line, context=grounding)
        except ValidationError:
            kept.append(slot)
            continue
        if not in_language(value, language):
            kept.append(slot)
            continue
        if slot == "task":
            if terms and not any(term in value.lower() for term in terms):
                value = _with_terms(value, terms, grounding)
            data["task"]["statement"] = value
        elif slot == "note":
            data["note"] = value
        elif slot.startswith("why"):
            data["references"][int(slot[4:-1])]["why"] = value
        else:
            where, key = slot.split(".")
            data["workflow"]["steps"][int(where[6:-1])][key] = value
    if data["workflow"]:
        data["workflow"]["input"] = data["workflow"]["steps"][0]["input"]
        data["workflow"]["output"] = data["workflow"]["steps"][-1]["output"]
    return AnswerDraft.model_validate(data, context=grounding), kept


def _with_terms(value: str, terms: list[str], grounding: GroundingContext) -> str:
    try:
        return TASK_SLOT.validate_python(f"{value} ({', '.join(terms)})", context=grounding)
    except ValidationError:  # too long with them: the translation alone
        return value
