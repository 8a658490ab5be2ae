"""Sections shown while the rest of the answer is still being written, each checked first.

A local model takes seconds per answer; a reader watching a stream should see the task
statement as soon as the model has written it, not when the last reference is done. When
the caller listens (``explain(on_event=...)``), the backend streams its text and each
slot that is complete and passes its own checks (links, echoed instructions, length, the
task's name; for a translated line its tag, anchors and script) becomes a ``section``
event at once. Nothing that failed a check is ever sent. The final Answer is checked as a
whole afterwards, and its ``answer`` event replaces everything sent before it.

Previews are a courtesy: a failure while making one is logged and turns previews off for
the run; it never fails the answer.
"""

from __future__ import annotations

import json
import logging
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

_log = logging.getLogger("grounded_answer.pipeline")


class Preview:
    """Turns a draft's decided slots into ``section`` events, each sent once as it is.

    The writer that streams sets :attr:`baseline` (the draft the slots fill) and
    :attr:`grounding` (the checks its own reply is held to) before its call.
    """

    def __init__(self, run: Run, sections: Sections, plan: EvidencePlan) -> None:
        self.run = run
        self.sections = sections
        self.plan = plan
        self.baseline: AnswerDraft | None = None
        self.grounding: GroundingContext | None = None
        self.sent: dict[tuple[str, int], str] = {}
        self.failed = False

    def guided(self, tails: DraftTails | None) -> Callable[[str], None]:
        """The ``on_text`` of a guided reply (JSON slots)."""
        last: list[Any] = [None]

        def seen(text: str) -> None:
            try:
                data = pydantic_core.from_json(strip_fences(text), allow_partial=True)
            except ValueError:
                return
            complete = _complete(text)
            if not isinstance(data, dict) or (data == last[0] and not complete):
                return  # nothing new is whole yet
            last[0] = data
            self._safely(lambda: self._guided(data, complete, tails))

        return seen

    def translation(
        self, draft: AnswerDraft, lines: Sequence[Line], language: str
    ) -> Callable[[str], None]:
        """The ``on_text`` of a translation reply (tagged lines)."""
        last = [""]

        def seen(text: str) -> None:
            whole = text[: text.rfind("\n") + 1]
            if whole == last[0]:
                return  # only a finished line can prove anything new
            last[0] = whole
            self._safely(lambda: self._translation(draft, whole, lines, language))

        return seen

    def _guided(self, data: dict[str, Any], complete: bool, tails: DraftTails | None) -> None:
        baseline, grounding = self.baseline, self.grounding
        if baseline is None or grounding is None:
            return
        guided, dropped = salvage_guided(json.dumps(data), baseline, self.plan, grounding)
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
        present = {"task"} if "task" in data else set()
        present |= {f"steps[{n}]" for n in range(len(steps))}
        present |= {f"why[{n}]" for n in range(len(why))}
        # A finished reply decides the slots it left out too (they keep the offline text);
        # a slot it wrote that failed is not decided: a repair will rewrite it.
        decided = (self._every_slot(baseline) if complete else written) - (bad & present)
        try:
            draft = merge_guided(guided, baseline, self.plan, grounding, tails)
        except ValidationError:
            return
        self.emit(draft, decided)

    def _translation(
        self, draft: AnswerDraft, whole: str, lines: Sequence[Line], language: str
    ) -> None:
        grounding = self.grounding
        if grounding is None:
            return
        partial, slots = preview_translation(draft, whole, lines, grounding, language, self.plan)
        decided = {slot for slot in slots if not slot.startswith("steps")}
        steps = partial.workflow.steps if partial.workflow else []
        decided |= {
            f"steps[{n}]"
            for n in range(len(steps))
            if {f"steps[{n}].action", f"steps[{n}].io"} <= slots
        }
        self.emit(partial, decided)

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

    def _safely(self, make: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            make()
        except Exception:  # a preview is a courtesy; the answer must not pay for its bug
            self.failed = True
            _log.exception("section previews turned off for this answer")

    @staticmethod
    def _every_slot(baseline: AnswerDraft) -> set[str]:
        steps = len(baseline.workflow.steps) if baseline.workflow else 0
        return {
            "task",
            *(f"steps[{n}]" for n in range(steps)),
            *(f"why[{n}]" for n in range(len(baseline.references))),
        }


def _complete(text: str) -> bool:
    try:
        json.loads(strip_fences(text))
    except ValueError:
        return False
    return True
