"""Before any prose: which sources matter and why, whether the question is covered, the steps.

The deterministic evidence plan (:mod:`.plan`, with :mod:`.relevance` and :mod:`.language`)
comes first; with a language model configured the model reads each source and judges it
(:mod:`.judge`); :mod:`.enforce` holds any written answer to the plan's invariants.
"""

from .language import LANGUAGE_NAMES, language_name, read_question, script_matches
from .models import (
    Evidence,
    EvidencePlan,
    PlannedSource,
    PlannedStep,
    QuestionReading,
    Relevance,
    TaskCandidate,
    Verdict,
)
from .plan import make_plan

__all__ = [
    "LANGUAGE_NAMES",
    "Evidence",
    "EvidencePlan",
    "PlannedSource",
    "PlannedStep",
    "QuestionReading",
    "Relevance",
    "TaskCandidate",
    "Verdict",
    "language_name",
    "make_plan",
    "read_question",
    "script_matches",
]
