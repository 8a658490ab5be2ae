"""Text from the plan, never a backend call: prompts, the offline writer, guided slots, translation.

:mod:`.prompts` renders the templates in ``templates/`` into chat messages;
:mod:`.offline` writes a whole answer draft from the plan alone (the stub's answer, and
what a model rewords); :mod:`.guided` defines the prose slots a model may reword and checks
them; :mod:`.translate` turns a draft into numbered lines for one translation call and puts
the reply back, slot by slot.
"""

from .offline import offline_draft
from .prompts import ChatMessage, PromptContext, PromptPassage, Prompts, PromptSource, load_prompts

__all__ = [
    "ChatMessage",
    "PromptContext",
    "PromptPassage",
    "PromptSource",
    "Prompts",
    "load_prompts",
    "offline_draft",
]
