"""The HTTP service: ``POST /v1/explain``, ``POST /v1/explain/stream``, a page at ``/``.

Also the probes (``/healthz``, ``/readyz``), ``/metrics``, and the MCP server
(:func:`run_mcp`). Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client, mcp);
importing this package does not import them, so ``grounded_answer`` stays light, and a
missing extra is a :class:`~grounded_answer.errors.ConfigError` that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Settings, load_settings
from ..errors import ConfigError
from ._run import check_binding

if TYPE_CHECKING:
    from ..embeddings import Embedder

__all__ = ["check_binding", "create_app", "run", "run_mcp"]

_HINT = "pip install 'grounded-answer[serve]'"


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> Any:
    """The ASGI application (a FastAPI instance) serving answers under ``settings``.

    The model and corpora load in the background once the app starts; ``/readyz`` says
    when they are in (``uvicorn --factory grounded_answer.serve:create_app`` works).

    Args:
        settings: Configuration; default :func:`~grounded_answer.load_settings`.
        embedder: An embedder to share instead of the configured model (tests, custom code).

    Raises:
        ConfigError: the ``serve`` extra is not installed, or an API key is unusable.

    """
    try:
        from ._app import build_app
    except ImportError as exc:
        raise _missing(exc) from None
    return build_app(settings or load_settings(), embedder=embedder)


def run(settings: Settings | None = None, *, insecure: bool = False) -> None:
    """Serve on ``serve.host``:``serve.port`` with ``serve.workers`` processes until stopped.

    SIGTERM drains: new requests get 503 while the answers in flight finish (up to
    ``serve.drain_timeout``), then it returns.

    Args:
        settings: Configuration; default :func:`~grounded_answer.load_settings`.
        insecure: Listen beyond loopback even without API keys.

    Raises:
        ConfigError: a missing extra, or beyond loopback without keys (not ``insecure``).
        GroundedAnswerError: loading the model, corpora or response cache failed.

    """
    try:
        import uvicorn  # noqa: F401

        from ._run import run as serve
    except ImportError as exc:
        raise _missing(exc) from None
    serve(settings or load_settings(), insecure=insecure)


def run_mcp(settings: Settings | None = None) -> None:
    """Serve the ``explain_bundle`` MCP tool over stdio until the client closes it."""
    try:
        from ._mcp import run_stdio
    except ImportError as exc:
        raise _missing(exc, "the MCP server needs the mcp SDK") from None
    run_stdio(settings or load_settings())


def _missing(
    exc: ImportError, what: str = "the HTTP service needs FastAPI and uvicorn"
) -> ConfigError:
    return ConfigError(f"{what}: {_HINT} ({exc.name or exc} is missing)")
