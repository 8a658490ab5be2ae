"""API keys: who may call the service, checked in constant time, logged by key id only.

Clients send ``Authorization: Bearer <key>``. The keys come from ``serve.api_keys`` and
``serve.api_keys_file``; with none configured the service is open (and ``serve`` refuses
to listen beyond loopback unless told ``--insecure``). The presented token is hashed and
compared with every configured key's hash by :func:`hmac.compare_digest`, all of them,
every time, so neither the position of a match nor a key's length shows in the timing.
Logs and metrics name a key by :func:`key_id`, never by the key.

Open without a key, by design: ``/healthz`` and ``/readyz`` (probes carry no secrets),
the page ``/`` and ``/static/*`` (the same files for everyone, no data; the page asks
for a key and sends it with its API calls), and ``/metrics`` only if
``serve.metrics_public``. Everything else needs a key, so a route added later is
protected unless it is opened here on purpose; so does every websocket (refused before
the handshake, which the client sees as a 403). Only the ``lifespan`` scope, the server
starting and stopping, passes without one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from ..config import ServeSettings
from ..errors import ConfigError
from . import _context
from ._errors import error_body
from ._middleware import ASGIApp, Receive, Scope, Send

__all__ = ["OPEN_PATHS", "ApiKeys", "Auth", "key_id", "key_problem"]

#: Paths anyone may read (see the module docstring for why each is open).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/", "/favicon.ico"})

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
_REALM = 'Bearer realm="grounded-answer"'


def key_id(key: str) -> str:
    """A key's name in logs: the first 8 hex digits of its sha256 (not enough to guess it)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an API key, or None: 16-256 characters of RFC 6750's token set.

    Short keys are guessable; other characters would not survive an HTTP header.
    """
    if not 16 <= len(key) <= 256:
        return f"an API key needs 16 to 256 characters, not {len(key)}"
    if not set(key) <= _KEY_CHARS:
        return "an API key may hold only A-Z a-z 0-9 - . _ ~ + / ="
    return None


class ApiKeys:
    """The configured keys, kept as sha256 digests, and the constant-time check."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._digests = [(hashlib.sha256(key.encode()).digest(), key_id(key)) for key in keys]

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (then keys are required)."""
        return bool(self._digests)

    @property
    def ids(self) -> list[str]:
        """The key ids, for the start-up log."""
        return [kid for _, kid in self._digests]

    @classmethod
    def from_settings(cls, serve: ServeSettings) -> ApiKeys:
        """The keys of ``serve.api_keys`` plus those in ``serve.api_keys_file``.

        Raises:
            ConfigError: the file cannot be read, or a key is too short or has a character
                a bearer token cannot carry (the file's line number is given, not the key).

        """
        keys: list[str] = []
        for number, secret in enumerate(serve.api_keys, 1):
            key = secret.get_secret_value()
            problem = key_problem(key)
            if problem:
                raise ConfigError(f"serve.api_keys, key {number}: {problem}")
            keys.append(key)
        path = serve.api_keys_file
        if path is not None:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"serve.api_keys_file {path}: cannot read it ({exc})") from None
            for number, line in enumerate(lines, 1):
                key = line.strip()
                if not key or key.startswith("#"):
                    continue
                problem = key_problem(key)
                if problem:
                    raise ConfigError(f"serve.api_keys_file {path}, line {number}: {problem}")
                keys.append(key)
            if not keys:
                raise ConfigError(f"serve.api_keys_file {path} holds no key")
        return cls(keys)

    def match(self, token: str) -> str | None:
        """The id of the key equal to ``token``, or None; every key is compared."""
        presented = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        for digest, kid in self._digests:
            if hmac.compare_digest(presented, digest):
                found = kid
        return found


def _bearer_token(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class Auth:
    """Refuse requests without a configured key with 401 (the service's JSON error shape).

    A websocket without one is closed before its handshake (the client sees a 403).
    Plain ASGI, like the other layers. CORS preflights (OPTIONS) never reach it: the CORS
    layer outside answers them, since browsers send no credentials with a preflight.
    """

    def __init__(self, app: ASGIApp, keys: ApiKeys, *, metrics_public: bool) -> None:
        self.app = app
        self.keys = keys
        self.metrics_public = metrics_public

    def is_open(self, path: str) -> bool:
        """True for the paths anyone may read."""
        return (
            path in OPEN_PATHS
            or path.startswith("/static/")
            or (self.metrics_public and path == "/metrics")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "lifespan"
            or not self.keys.enabled
            or (scope["type"] == "http" and self.is_open(scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        token = _bearer_token(scope.get("headers", []))
        kid = None if token is None else self.keys.match(token)
        if kid is None:
            if scope["type"] == "http":
                await self._refuse(send, presented=token is not None)
            else:
                await self._refuse_websocket(receive, send)
            return
        info = _context.current()
        if info is not None:
            info.key_id = kid
        await self.app(scope, receive, send)

    async def _refuse_websocket(self, receive: Receive, send: Send) -> None:
        # Closing before accepting denies the handshake: the server answers it with 403.
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008, "reason": "API key required"})

    async def _refuse(self, send: Send, *, presented: bool) -> None:
        if presented:
            message = "the API key is not valid"
            challenge = f'{_REALM}, error="invalid_token"'
        else:
            message = "an API key is required: send 'Authorization: Bearer <key>'"
            challenge = _REALM
        body = (
            error_body(401, "AuthenticationError", "user_input", message, field="authorization")
            .model_dump_json()
            .encode()
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", challenge.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
