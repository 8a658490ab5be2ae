"""``explain()`` and ``aexplain()``: orchestration of the stages, and nothing else.

The stages run in the order the data flows, each in its own module, one
:class:`~._run.Run` passed down instead of lists and dicts that several steps mutate:

- :mod:`._inputs`: the sources in play and the checked question;
- :mod:`._retrieve`: the question as retrieval reads it, the passages, the evidence plan;
- :mod:`._write`: the prompt's material, then ask, check and repair (guided or free);
- :func:`grounded_answer.planning.enforce.hold_to_plan`: the plan's invariants restored;
- :mod:`._assemble`: the Answer, titles and links from the source records.

The CLI, the server, the batch runner and the evaluations use the public functions here.
"""

from ._explain import aexplain, explain
from ._inputs import check_question, resolve_sources
from ._retrieve import (
    english_question,
    plan_evidence,
    restate_question,
    retrieve_passages,
    retriever_for,
)

__all__ = [
    "aexplain",
    "check_question",
    "english_question",
    "explain",
    "plan_evidence",
    "resolve_sources",
    "restate_question",
    "retrieve_passages",
    "retriever_for",
]
