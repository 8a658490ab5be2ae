"""What the HTTP API accepts and returns besides the Answer itself (typed, documented)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..config import ErrorCategory

__all__ = [
    "ErrorBody",
    "ErrorDetail",
    "ExplainRequest",
    "GraphEvent",
    "Health",
    "Readiness",
    "ServiceState",
    "StatusEvent",
]


class ExplainRequest(BaseModel):
    """One question to answer: a bundle, or a question over a configured corpus."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "bundle": 'A user has asked the following question: "Can AI sharpen a blurry '
                    'photo?" ... ### Recommended AI Models: Model: ... Paper: ...'
                },
                {"question": "Can AI remove motion blur?", "corpus": "default"},
            ]
        },
    )

    bundle: str | None = Field(
        default=None,
        description="The bundle's text in the platform's format (see "
        "benchmarks/bundles/dev/00_seed.txt); then only its sources are used and cited.",
    )
    question: str | None = Field(
        default=None,
        description="The user's question. With a bundle it replaces the bundle's own "
        "question; without one it is answered from the corpus named by 'corpus'. "
        "At most answer.max_question_chars characters.",
    )
    corpus: str | None = Field(
        default=None,
        description="Name of a corpus configured on the server (serve.corpora, or "
        "'default'); not with 'bundle'. Default: 'default'.",
    )
    backend: str | None = Field(
        default=None,
        description="LLM backend for this request, one of those listed by /healthz "
        "('backends'); default: the server's llm.backend.",
    )
    language: str | None = Field(
        default=None,
        pattern=r"^(auto|[a-z]{2})$",
        description="Language of the answer's prose: 'auto' (the question's) or an ISO "
        "639-1 code such as 'ko'; default: the server's answer.language. The offline stub "
        "writes English and says so.",
    )

    @model_validator(mode="after")
    def _one_source_of_sources(self) -> ExplainRequest:
        if self.bundle is None and self.question is None:
            raise ValueError(
                "give 'bundle' (the bundle's text) or 'question' (with an optional 'corpus')"
            )
        if self.bundle is not None and self.corpus is not None:
            raise ValueError("give either 'bundle' or 'corpus', not both")
        return self


class ErrorDetail(BaseModel):
    """What went wrong, in the same categories as the library's exceptions."""

    type: str = Field(
        description="The exception class, e.g. BundleParseError, "
        "BackendConnectionError, RequestValidationError."
    )
    category: ErrorCategory = Field(
        description="'user_input': fix the request and send it again (4xx); 'runtime': "
        "something outside the request failed, retry later (429, 5xx)."
    )
    message: str = Field(description="One line for a person; links in it are defanged.")
    status: int = Field(description="The HTTP status (also in the event stream's 'error').")
    field: str | None = Field(
        default=None,
        description="The request field at fault: bundle, question, corpus, backend or body.",
    )
    line: int | None = Field(default=None, description="The bundle line at fault, if known.")
    retry_after: int | None = Field(
        default=None,
        description="Seconds to wait before retrying (429, 503), as in the Retry-After header.",
    )
    request_id: str | None = Field(
        default=None,
        description="The request's id, as in the X-Request-ID response header "
        "and the server's log line: quote it when reporting a problem.",
    )


class ErrorBody(BaseModel):
    """Every error response (and every stream 'error' event) has this shape."""

    error: ErrorDetail = Field(description="The error.")


class StatusEvent(BaseModel):
    """Stream event 'status': where the request stands before any section exists."""

    state: Literal["queued", "running"] = Field(
        description="'queued': waiting for a free slot; 'running': retrieving and writing."
    )
    ahead: int = Field(default=0, description="Requests ahead of this one in the queue.")


class GraphEvent(BaseModel):
    """Stream event 'graph': the workflow drawn, for clients that show it."""

    svg: str = Field(
        description="The workflow as a standalone SVG image (escaped text, no "
        "script); show it as an <img>."
    )
    mermaid: str = Field(description="The same graph as a Mermaid flowchart.")
    summary: str = Field(description="The node labels joined by arrows, as alt text.")


#: Where a server process stands: loading, answering, shutting down, or unable to load.
ServiceState = Literal["starting", "ready", "draining", "failed"]


class Health(BaseModel):
    """GET /healthz: the process is up (liveness), where it stands, and how busy it is."""

    status: Literal["ok"] = Field(description="Always 'ok' when the server answers.")
    state: ServiceState = Field(
        description="'starting' (loading the model and corpora), 'ready', 'draining' "
        "(shutting down, finishing the answers in flight) or 'failed' (could not load; "
        "see /readyz). Only 'ready' takes requests."
    )
    auth: bool = Field(description="True when API requests need 'Authorization: Bearer <key>'.")
    version: str = Field(description="grounded-answer's version.")
    backend: str = Field(description="The default LLM backend (llm.backend).")
    backends: list[str] = Field(description="Backends a request may choose.")
    corpora: list[str] = Field(
        description="Corpus names a request may choose (empty while starting)."
    )
    embedding_model: str | None = Field(
        description="The embedding model, loaded once at start (None while starting)."
    )
    running: int = Field(description="Answers being computed now.")
    waiting: int = Field(description="Requests waiting for a slot.")
    max_concurrent: int = Field(description="serve.max_concurrent.")
    max_queue: int = Field(description="serve.max_queue.")


class Readiness(BaseModel):
    """GET /readyz: 200 when the process takes requests, else 503 with the reason."""

    ready: bool = Field(description="True only in state 'ready'.")
    state: ServiceState = Field(description="As in /healthz.")
    detail: str = Field(default="", description="Why it is not ready, when it is not.")
