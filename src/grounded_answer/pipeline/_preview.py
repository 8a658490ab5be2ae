"""Sections shown while the rest of the answer is still being written, each checked first.

A local model takes seconds per answer; a reader watching a stream should see the task
statement as soon as the model has written it, not when the last reference is done. When
the caller listens (``explain(on_event=...)``), the backend streams its text and each
slot that is complete and passes its own checks (links, echoed instructions, length, the
task's name; for a translated line its tag, anchors and script) becomes a ``section``
event at once. Nothing that failed a check is ever sent. The final Answer is checked as a
whole afterwards; a section it changes (a repair, a line found out of place once the
reply is complete) is sent again by the stream, and the final ``answer`` decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pydantic_core
from pydantic import ValidationError

from ..grounding.draft import AnswerDraft, GroundingContext, strip_fences
from ..planning import EvidencePlan
from ..writing.guided import merge_guided, salvage_guided
from ..writing.offline import DraftTails
from ..writing.translate import Line, preview_translation
from ._assemble import Sections
from ._run import Run

__all__ = ["Preview"]


class Preview:
    """Turns a draft's decided slots into ``section`` events, each sent once as it is."""

    def __init__(
        self,
        run: Run,
        sections: Sections,
        baseline: AnswerDraft,
        plan: EvidencePlan,
        grounding: GroundingContext,
    ) -> None:
        self.run = run
        self.sections = sections
        self.baseline = baseline
        self.plan = plan
        self.grounding = grounding
        self.sent: dict[tuple[str, int], str] = {}

    def guided(self, tails: DraftTails | None) -> Callable[[str], None]:
        """The ``on_text`` of a guided reply (JSON slots)."""

        def seen(text: str) -> None:
            try:
                data = pydantic_core.from_json(strip_fences(text), allow_partial=True)
            except ValueError:
                return
            if not isinstance(data, dict):
                return
            guided, dropped = salvage_guided(
                json.dumps(data), self.baseline, self.plan, self.grounding
            )
            bad = {entry.split(":", 1)[0].split(".", 1)[0] for entry in dropped}
            written = {"task"} if isinstance(data.get("task"), str) else set()
            steps: list[Any] = data["steps"] if isinstance(data.get("steps"), list) else []
            written |= {
                f"steps[{n}]"
                for n, step in enumerate(steps)
                if isinstance(step, dict) and len(step) == 3
            }
            why: list[Any] = data["why"] if isinstance(data.get("why"), list) else []
            written |= {f"why[{n}]" for n, item in enumerate(why) if isinstance(item, str)}
            decided = written - bad
            if _complete(text):
                decided |= self._every_slot()
            try:
                draft = merge_guided(guided, self.baseline, self.plan, self.grounding, tails)
            except ValidationError:
                return
            self.emit(draft, decided)

        return seen

    def translation(
        self, draft: AnswerDraft, lines: Sequence[Line], language: str
    ) -> Callable[[str], None]:
        """The ``on_text`` of a translation reply (tagged lines)."""

        def seen(text: str) -> None:
            partial, slots = preview_translation(
                draft, text, lines, self.grounding, language, self.plan
            )
            decided = {slot for slot in slots if not slot.startswith("steps")}
            steps = partial.workflow.steps if partial.workflow else []
            decided |= {
                f"steps[{n}]"
                for n in range(len(steps))
                if {f"steps[{n}].action", f"steps[{n}].io"} <= slots
            }
            self.emit(partial, decided)

        return seen

    def emit(self, draft: AnswerDraft, decided: set[str]) -> None:
        """Send each decided section that was not sent before in this form."""
        out: list[tuple[str, int, dict[str, Any]]] = []
        if "task" in decided:
            out.append(("task", 0, self.sections.task(draft).model_dump(mode="json")))
        for n, step in enumerate(self.sections.steps(draft)):
            if f"steps[{n}]" in decided:
                out.append(("step", n, step.model_dump(mode="json")))
        for n, ref in enumerate(self.sections.references(draft)):
            if f"why[{n}]" in decided:
                out.append(("reference", n, ref.model_dump(mode="json")))
        for kind, index, data in out:
            key = json.dumps(data, sort_keys=True, ensure_ascii=False)
            if self.sent.get((kind, index)) != key:
                self.sent[(kind, index)] = key
                self.run.emit("section", {"kind": kind, "index": index, "data": data})

    def _every_slot(self) -> set[str]:
        steps = len(self.baseline.workflow.steps) if self.baseline.workflow else 0
        return {
            "task",
            *(f"steps[{n}]" for n in range(steps)),
            *(f"why[{n}]" for n in range(len(self.baseline.references))),
        }


def _complete(text: str) -> bool:
    try:
        json.loads(strip_fences(text))
    except ValueError:
        return False
    return True
