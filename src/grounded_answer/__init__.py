"""grounded-answer: explain recommended AI models from the provided sources, and nothing else.

    >>> from grounded_answer import explain
    >>> answer = explain("Can AI sharpen a blurry photo?")
    >>> print(answer.to_markdown())

Heavy dependencies (torch, sentence-transformers, faiss, openai) load on first use.
"""

from .answer import Answer, Reference, Task, ValidationReport, Workflow, WorkflowStep
from .bundle import Bundle, load_bundle, parse_bundle
from .config import Settings, load_settings
from .corpus import Corpus, Passage, Role, Source, load_corpus
from .errors import (
    AnswerRunError,
    BackendConnectionError,
    BackendError,
    BackendRateLimitError,
    BackendResponseError,
    BackendTimeoutError,
    BundleParseError,
    ConfigError,
    CorpusError,
    GroundedAnswerError,
    IndexStoreError,
    QuestionError,
    RunCancelledError,
    RunTimeoutError,
    ServerBusyError,
    SourceFileError,
    UngroundedAnswerError,
    UserInputError,
)
from .pipeline import aexplain, explain

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswerRunError",
    "BackendConnectionError",
    "BackendError",
    "BackendRateLimitError",
    "BackendResponseError",
    "BackendTimeoutError",
    "Bundle",
    "BundleParseError",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "GroundedAnswerError",
    "IndexStoreError",
    "Passage",
    "QuestionError",
    "Reference",
    "Role",
    "RunCancelledError",
    "RunTimeoutError",
    "ServerBusyError",
    "Settings",
    "Source",
    "SourceFileError",
    "Task",
    "UngroundedAnswerError",
    "UserInputError",
    "ValidationReport",
    "Workflow",
    "WorkflowStep",
    "__version__",
    "aexplain",
    "explain",
    "load_bundle",
    "load_corpus",
    "load_settings",
    "parse_bundle",
]
