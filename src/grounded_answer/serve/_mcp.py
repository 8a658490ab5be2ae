"""``grounded-answer mcp``: the ``explain_bundle`` tool over the Model Context Protocol.

An MCP client (an IDE, an agent) starts the command and speaks JSON-RPC on its stdin and
stdout, through the official SDK's :class:`~mcp.server.mcpserver.MCPServer`. The tool
takes a bundle's text, and optionally a question to answer instead of the bundle's and
a backend among those the server offers (``serve.backends``, as over HTTP); it returns
the Answer twice: as structured content (the Answer's JSON, checked against the output
schema the tool publishes) for programs, and as Markdown text for the model reading it.

The same :class:`~grounded_answer.serve._app.AnswerService` as the HTTP service checks
the request and runs the answer, so both give the same answers and refuse the same
input. Every failure is an MCP tool error (``is_error``) whose text is the library's
typed message, ``"<ErrorType>: <message>"``, never a traceback; a bug is logged on
stderr and reported as ``InternalError``. The model and corpora load before the server
starts reading stdin, so a broken configuration exits with its error at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from .. import __version__
from ..answer import Answer
from ..backends.base import Cancellation
from ..config import Settings
from ..embeddings import Embedder
from ..errors import GroundedAnswerError
from ..grounding.links import defang
from ._app import AnswerService
from ._errors import Rejected
from ._models import ExplainRequest

__all__ = ["TOOL", "build_server", "run_stdio"]

_log = logging.getLogger("grounded_answer.mcp")

#: The tool's name.
TOOL = "explain_bundle"

_DESCRIPTION = (
    "Explain the AI models recommended in a bundle (the platform's prompt: a quoted "
    "question, then Model/Paper/GitHub/Summary entries) in three sections: the task, a "
    "workflow of steps, and references. Written from the bundle's sources only; every "
    "link comes from a source. Returns the Answer as JSON (structured content) and as "
    "Markdown."
)


def build_server(settings: Settings, *, embedder: Embedder | None = None) -> MCPServer:
    """The MCP server with the ``explain_bundle`` tool, its model and corpora loaded.

    Raises:
        GroundedAnswerError: the model, corpora or response cache cannot be loaded.

    """
    service = AnswerService(settings, embedder=embedder)
    service.load()
    server: MCPServer = MCPServer(
        name="grounded-answer",
        version=__version__,
        instructions="Call explain_bundle with a bundle's text to get a grounded "
        "explanation of its recommended models.",
    )
    max_bytes = settings.sources.max_bundle_bytes

    @server.tool(
        name=TOOL,
        title="Explain a bundle",
        description=_DESCRIPTION,
        annotations=ToolAnnotations(
            read_only_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def explain_bundle(
        bundle: Annotated[
            str,
            Field(
                description="The bundle's text in the platform's "
                "format (see benchmarks/bundles/dev/00_seed.txt)."
            ),
        ],
        question: Annotated[
            str | None, Field(description="A question to answer instead of the bundle's own.")
        ] = None,
        backend: Annotated[
            str | None,
            Field(
                description="The LLM backend, one of those the "
                "server offers; default its llm.backend."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, Answer]:
        size = len(bundle.encode("utf-8", errors="replace"))
        if size > max_bytes:
            raise ToolError(
                f"RequestTooLarge: the bundle has {size} bytes; the limit is "
                f"{max_bytes} (sources.max_bundle_bytes)"
            )
        try:
            request = ExplainRequest(bundle=bundle, question=question, backend=backend)
            work = service.prepare(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ToolError(f"RequestValidationError: {first['msg']}") from None
        except Rejected as exc:
            raise ToolError(f"{exc.body.error.type}: {exc.body.error.message}") from None
        answer = await _run(work)
        return CallToolResult(
            content=[TextContent(type="text", text=answer.to_markdown())],
            structured_content=json.loads(answer.to_json(indent=None)),
        )

    return server


async def _run(work: Callable[[Cancellation], Answer]) -> Answer:
    """Run ``work`` in a thread; a cancelled MCP request cancels its LLM call."""
    cancel = Cancellation()
    try:
        return await anyio.to_thread.run_sync(work, cancel, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        cancel.cancel("cancelled by the MCP client")
        raise
    except GroundedAnswerError as exc:
        raise ToolError(f"{type(exc).__name__}: {defang(str(exc))}") from None
    except Exception as exc:  # a bug: the details go to stderr, not to the client
        _log.error("unexpected error while answering", exc_info=exc)
        raise ToolError(
            "InternalError: internal error; the server's log (stderr) has the details"
        ) from None


def run_stdio(settings: Settings) -> None:
    """Load, then serve on stdin/stdout until the client closes the connection."""
    logging.basicConfig(level=logging.WARNING, format="grounded-answer mcp: %(message)s")
    build_server(settings).run("stdio")
