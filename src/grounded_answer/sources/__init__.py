"""What the platform hands over: source records, corpus files and bundles.

A :class:`Source` is the unit of trust (only its link fields may ever be shown as links);
a :class:`Corpus` is a set of them; a :class:`Bundle` is the platform's prompt parsed into
a question and a corpus. :mod:`.tasks` is the small task vocabulary that reads what a
platform name or a title says about its task: passages spell it out for retrieval, and the
plan reads it to judge relevance.
"""

from .bundle import Bundle, load_bundle, parse_bundle
from .corpus import DEFAULT_CORPUS, Corpus, Passage, Role, Source, load_corpus, make_source_id

__all__ = [
    "DEFAULT_CORPUS",
    "Bundle",
    "Corpus",
    "Passage",
    "Role",
    "Source",
    "load_bundle",
    "load_corpus",
    "make_source_id",
    "parse_bundle",
]
