"""Fixtures shared by the integration tests: a real PostgreSQL + pgvector (pg_server.py)."""

from .pg_server import pg_dsn, pg_server

__all__ = ["pg_dsn", "pg_server"]
