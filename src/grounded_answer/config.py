"""Settings: one typed object, from explicit arguments, environment, a TOML file, defaults.

Precedence, highest first: arguments to :class:`Settings`, environment variables
(``GROUNDED_ANSWER_<SECTION>__<FIELD>``, e.g. ``GROUNDED_ANSWER_LLM__BACKEND=openai``),
the TOML file named by ``GROUNDED_ANSWER_CONFIG`` (or ``grounded-answer.toml`` in the
working directory), then the defaults, which run fully offline. Unknown keys are errors,
so a typo never passes silently.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigError

__all__ = [
    "AnswerFormat",
    "AnswerSettings",
    "Device",
    "EmbeddingBackend",
    "EmbeddingSettings",
    "ErrorCategory",
    "Fusion",
    "IndexKind",
    "IndexSettings",
    "InvalidLinks",
    "JudgeMode",
    "JudgeSettings",
    "LLMSettings",
    "Method",
    "Policy",
    "RetrievalSettings",
    "ServeSettings",
    "Settings",
    "SourceSettings",
    "StoreName",
    "StructuredOutput",
    "Verdict",
    "WritingMode",
    "load_settings",
]

# Every set of named choices is declared here once; the modules that act on a choice
# import its type, and the command line takes its choices from it (typing.get_args).
#: How passages are ranked: sentence embeddings, BM25 terms, or both fused.
Method = Literal["dense", "bm25", "hybrid"]
#: How hybrid retrieval combines two rankings.
Fusion = Literal["rrf", "weighted"]
#: Exact search over every vector, or an HNSW graph.
IndexKind = Literal["flat", "hnsw"]
#: Where a large corpus's vectors live.
StoreName = Literal["faiss", "pgvector"]
#: Which runtime encodes text (see EmbeddingSettings.backend).
EmbeddingBackend = Literal["auto", "torch", "onnx", "onnx-int8"]
#: How the answer's shape is asked of an OpenAI-compatible server.
StructuredOutput = Literal["auto", "json_schema", "json_object"]
#: What happens after the repairs run out.
Policy = Literal["strict", "drop"]
#: Who writes the answer's structure: the plan (guided), the model (free), or either.
WritingMode = Literal["auto", "guided", "free", "plan"]
#: Who decides whether a question is answerable.
Verdict = Literal["plan", "model"]
#: Whether a language model judges each source (planning/judge.py).
JudgeMode = Literal["auto", "on", "off"]
#: What a bundle or corpus field with an unsafe link does.
InvalidLinks = Literal["error", "drop"]
#: The renderings an answer is written to a file or stream in.
AnswerFormat = Literal["json", "markdown", "html"]
#: The two kinds of failure: the caller's input to fix, or the run (CLI exit 2 and 1).
ErrorCategory = Literal["user_input", "runtime"]


#: Where the embedding model runs: ``auto`` is CUDA, then Apple's MPS, then the CPU.
Device = Literal["auto", "cpu", "cuda", "mps"]


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grounded-answer"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmbeddingSettings(_Section):
    """Which sentence embedding model encodes passages and questions."""

    model: str | None = Field(
        default=None,
        description="Local path of a sentence-transformers model; "
        "None = the packaged all-MiniLM-L6-v2.",
    )
    threads: int = Field(
        default=1,
        ge=0,
        le=256,
        description="torch threads (0 = torch's default). One is fastest for single queries "
        "on small machines shared with other work.",
    )
    batch_size: int = Field(
        default=64,
        ge=1,
        le=65536,
        description="Texts per encode batch. On a GPU, 1,024 or more (benchmarks/gpu_build.py).",
    )
    device: Device = Field(
        default="auto",
        description="Where index builds embed passages. 'auto': a GPU (CUDA, then MPS) when "
        "torch sees one and the build embeds at least 4,096 passages, else the CPU; "
        "'cpu', 'cuda', 'mps' force it. A GPU runs the exact model in float16 after a "
        "parity check against the CPU on a sample (cosine >= 0.999 each, recorded in the "
        "index manifest); it needs backend 'onnx' or 'torch', since the int8 export's "
        "vectors are made on the CPU only.",
    )
    query_device: Device = Field(
        default="cpu",
        description="Where questions are encoded. 'cpu' keeps the fast CPU path (the ONNX "
        "export); another value runs the 'torch' backend on that device (float32).",
    )
    export_dir: Path | None = Field(
        default=None,
        description="Where the ONNX exports of the embedding model are kept (made once, "
        "checked, shared by every process); None = index.cache_dir.",
    )
    backend: EmbeddingBackend = Field(
        default="auto",
        description="'auto' (the fast path): the int8 ONNX export, made and checked on "
        "first use (a note on stderr), then run without torch; sentence-transformers, with "
        "the reason in the answer's provenance, if it cannot be made. 'torch': always "
        "sentence-transformers; 'onnx': the exact export (matches sentence-transformers "
        "within 1e-5); 'onnx-int8': the int8 export, failing loudly if it cannot be made. "
        "int8 vectors have their own model id, so passages are embedded with it too.",
    )


class IndexSettings(_Section):
    """Where passage vectors are stored and how they are searched."""

    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Directory for persisted indexes; created on demand.",
    )
    store: StoreName = Field(
        default="faiss",
        description="'faiss': an embedded index in cache_dir; 'pgvector': a table in the "
        "PostgreSQL database named by dsn (needs grounded-answer[pgvector]).",
    )
    dsn: SecretStr | None = Field(
        default=None,
        description="PostgreSQL connection string for store='pgvector' (libpq URI or "
        "key=value), e.g. postgresql://user:password@host:5432/db; env "
        "GROUNDED_ANSWER_INDEX__DSN. The database needs the vector extension (pgvector).",
    )
    threads: int = Field(
        default=1,
        ge=0,
        le=256,
        description="FAISS OpenMP threads, process-wide (0 = faiss's default, one per core). "
        "One is fastest for single queries; on a busy small machine more make them many "
        "times slower (benchmarks/run.py measures it). More help batched builds on idle "
        "many-core machines.",
    )
    kind: IndexKind = Field(
        default="flat",
        description="'flat': exact search over every vector; 'hnsw': an approximate graph "
        "index, sub-linear for large corpora (recall tuned by the hnsw_* settings).",
    )
    hnsw_m: int = Field(
        default=16,
        ge=2,
        le=100,
        description="HNSW links per node: more = better recall, more memory, slower build.",
    )
    hnsw_ef_construction: int = Field(
        default=64,
        ge=4,
        le=1000,
        description="HNSW candidate list size while building: more = better graph, slower build.",
    )
    hnsw_ef_search: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="HNSW candidate list size per query (raised to k when k is larger): "
        "more = better recall, slower queries (benchmarks/stores.py measures the recall "
        "at 100k passages).",
    )


class RetrievalSettings(_Section):
    """How passages are found for a question."""

    k: int = Field(default=8, ge=1, le=1000, description="Passages retrieved per question.")
    method: Method = Field(default="hybrid", description="Dense embeddings, BM25, or both fused.")
    small_corpus_method: Method = Field(
        default="dense",
        description="Method for a corpus scored whole (see whole_corpus_sources), which is "
        "scored whole: BM25 statistics over a dozen passages are noise.",
    )
    fusion: Fusion = Field(default="weighted", description="How hybrid combines the two rankings.")
    alpha: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Weight of the dense ranking in hybrid fusion."
    )
    stemmer: str | None = Field(
        default="english",
        description="Snowball stemmer language for BM25; None = exact words (the BEIR "
        "baseline's setting).",
    )

    @field_validator("stemmer", mode="before")
    @classmethod
    def _known_stemmer(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        import Stemmer

        if value not in Stemmer.algorithms():
            known = ", ".join(Stemmer.algorithms())
            raise ValueError(f"unknown stemmer {value!r}; use one of {known}, or none")
        return value

    max_per_source: int | None = Field(
        default=2,
        ge=1,
        le=100,
        description="At most this many of the top passages from one source (None = no cap).",
    )
    max_sources: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Sources in play for a corpus too large to be scored whole (best-ranked "
        "first); a bundle's sources are all in play, and the evidence plan decides which "
        "of them the answer cites.",
    )
    whole_corpus_sources: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="A corpus of at most this many sources (every bundle) is scored whole "
        "in a small flat FAISS store: every source is judged, none is lost to a top-k cut.",
    )
    min_score: float = Field(
        default=0.2,
        ge=-1.0,
        le=1.0,
        description="Below this best cosine similarity the sources are taken not to cover "
        "the question (the answer says so instead of forcing a workflow).",
    )


class LLMSettings(_Section):
    """Which backend writes the answer, and how to reach it."""

    backend: str = Field(default="stub", description="'stub' (offline) or 'openai'.")
    model: str = Field(default="gpt-4o-mini", description="Model name sent to the server.")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1."
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key; falls back to OPENAI_API_KEY, then 'unused'."
    )
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds per request.")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=1200, ge=16, le=100_000, description="Completion limit.")
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of transient failures (connection, timeout, 429, 5xx).",
    )
    backoff: float = Field(
        default=0.5, ge=0.0, le=60.0, description="First retry delay in seconds; doubles."
    )
    max_backoff: float = Field(
        default=20.0, ge=0.0, le=600.0, description="Cap on one delay, Retry-After included."
    )
    cache: bool = Field(
        default=True,
        description="Keep each language-model response in the cache directory, keyed by "
        "backend, model, endpoint, messages, schema and sampling settings, so the same "
        "request asked twice costs one call (shared safely by processes).",
    )
    restate_question: bool = Field(
        default=True,
        description="Before retrieval, have the language model restate in English a question "
        "that is not in English, which the embedding model reads poorly or not at all (one "
        "short call, cached).",
    )
    structured_output: StructuredOutput = Field(
        default="auto",
        description="'auto' sends a JSON schema and falls back to JSON mode if refused.",
    )
    cache_url: SecretStr | None = Field(
        default=None,
        description="A PostgreSQL connection string (postgresql://user:password@host/db) for a "
        "response cache shared by every worker and host (one table, "
        "grounded_answer_llm_responses; needs grounded-answer[pgvector]); None = the SQLite "
        "file in index.cache_dir, shared by the processes of one host only. May name the "
        "same database as index.dsn. Env GROUNDED_ANSWER_LLM__CACHE_URL.",
    )
    cache_max_entries: int | None = Field(
        default=100_000,
        ge=1,
        le=1_000_000_000,
        description="Most responses kept in the cache, SQLite or PostgreSQL; the oldest go "
        "first. Pruned on a fraction of writes, so the table may briefly hold a few more. "
        "None = no limit.",
    )
    cache_max_age: float | None = Field(
        default=30 * 86_400.0,
        gt=0,
        le=100 * 365 * 86_400.0,
        description="Seconds a cached response stays usable (default 30 days); older ones "
        "are misses and are deleted when the cache is pruned. None = no limit.",
    )


class AnswerSettings(_Section):
    """How answers are validated and repaired."""

    max_repairs: int = Field(
        default=2, ge=0, le=10, description="Re-asks with the errors after a bad answer."
    )
    policy: Policy = Field(
        default="drop",
        description="After the repairs: 'strict' raises UngroundedAnswerError, 'drop' removes "
        "the offending content and reports it.",
    )
    max_question_chars: int = Field(
        default=4000, ge=1, le=1_000_000, description="Longer questions are refused."
    )
    prompts_dir: Path | None = Field(
        default=None,
        description="Directory with your own system.j2 / user.j2 / repair.j2 "
        "(and optionally guided_system.j2 / guided_user.j2 / restate.j2).",
    )
    mode: WritingMode = Field(
        default="auto",
        description="'guided': the evidence plan fixes sources, steps and verdict and the "
        "model rewrites only the prose slots (small models); 'free': the model writes the "
        "whole answer, still held to the plan's invariants (large models); 'plan': the "
        "model only judges (the sources, the coverage, the task) and the offline writer "
        "writes the answer from the judged plan, in English, with no writing call; 'auto': "
        "guided for a language model, the plan written directly by the offline stub.",
    )
    language: str = Field(
        default="auto",
        description="Language of the answer's prose: 'auto' = the question's, or an ISO "
        "639-1 code such as 'ko'. The offline stub writes English and says so.",
    )
    verdict: Verdict = Field(
        default="plan",
        description="Who decides whether the question is answerable: the evidence plan "
        "(the model may only add a reason), or the model (for strong models; an overruled "
        "plan is recorded in the validation report).",
    )


class JudgeSettings(_Section):
    """The language model reads each source and the question's coverage (planning/judge.py).

    The weight and both thresholds (citing, coverage) were tuned on the dev bundles with
    Qwen2.5-Coder-1.5B-Instruct (Q4_K_M); another model reads differently and may need its
    own (``benchmarks/judge.py --tune`` finds them from its scores).
    """

    enabled: JudgeMode = Field(
        default="auto",
        description="'auto': judge when a language model is configured (not the offline "
        "stub); 'on': always (an error with the stub); 'off': the plan's words and cosines "
        "decide alone.",
    )
    coverage: bool = Field(
        default=True,
        description="Let the model decide whether the question asks for what "
        "the recommended models do (a question that only shares their words is declined).",
    )
    task: bool = Field(
        default=True,
        description="Ask the model to name the task in a few words; the task "
        "statement gives its reading beside the plan's (the vocabulary knows 62 tasks).",
    )
    weight: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="How much the model's reading counts against the plan's grade: a paper "
        "scores its grade (relevant 2, borderline 1, not relevant 0) plus this times the "
        "z-score of the model's P(yes) within the bundle.",
    )
    cite_at: float = Field(
        default=1.25,
        ge=-10.0,
        le=10.0,
        description="A paper whose combined score reaches this is cited.",
    )
    coverage_min: float = Field(
        default=0.64,
        ge=0.0,
        le=1.0,
        description="Below this P(yes) the model declines a question the plan found covered "
        "(a question that only shares the models' words).",
    )
    top_logprobs: int = Field(
        default=10,
        ge=1,
        le=20,
        description="Alternatives asked for the first token; a "
        "server that returns none is judged by the word the model wrote.",
    )
    summary_chars: int = Field(
        default=500,
        ge=50,
        le=5000,
        description="Characters of a summary the model reads: "
        "each judgement costs its source's tokens.",
    )


class ServeSettings(_Section):
    """The HTTP service (``grounded-answer serve``): where it listens and what it admits."""

    host: str = Field(
        default="127.0.0.1",
        description="Interface to listen on. Beyond loopback, `grounded-answer serve` needs "
        "API keys (api_keys or api_keys_file), or --insecure for a trusted network.",
    )
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0 = any free one).")
    max_body_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        le=100_000_000,
        description="Largest request body accepted; larger ones get HTTP 413 before they are "
        "parsed. A bundle is typically 5-20 kB.",
    )
    max_concurrent: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Answers computed at once, each in a worker thread holding one LLM call; "
        "match it to what the LLM server can run in parallel.",
    )
    max_queue: int = Field(
        default=16,
        ge=0,
        le=10_000,
        description="Requests that may wait for a free slot; beyond max_concurrent + "
        "max_queue a request gets HTTP 429 at once, with Retry-After.",
    )
    request_timeout: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="Seconds a request may take, waiting in the queue included; then the LLM "
        "call is aborted and the answer is HTTP 504 (or an 'error' event when streaming).",
    )
    heartbeat: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Seconds between keep-alive comments on an idle event stream, so proxies "
        "do not close it while the LLM writes.",
    )
    corpora: dict[str, Path] = Field(
        default_factory=dict,
        description="Corpus files that requests may name ({'question': ..., 'corpus': NAME}); "
        "'default' always names the configured corpus. Clients never pass file paths.",
    )
    backends: list[str] | None = Field(
        default=None,
        description="Backends a request may choose with its 'backend' option; None = the "
        "configured llm.backend and 'stub'.",
    )

    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys a client may send as 'Authorization: Bearer <key>'; with any key "
        "configured (here or in api_keys_file), every endpoint but /healthz, /readyz, the "
        "page and its static files needs one. Env GROUNDED_ANSWER_SERVE__API_KEYS as a "
        "JSON list. 16 to 256 characters of A-Z a-z 0-9 - . _ ~ + / = each.",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="A file of API keys, one per line; blank lines and lines starting with "
        "'#' are ignored. Read when the server starts; adds to api_keys.",
    )
    metrics_public: bool = Field(
        default=False,
        description="Serve /metrics without a key even when keys are configured (for a "
        "scraper on a private network that cannot send one). Without keys it is open "
        "anyway.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (e.g. https://platform.example) allowed to call the API "
        "from their pages; empty = no CORS headers, so browsers allow the service's own "
        "page only. '*' is refused: name the origins.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Server processes (`serve --workers`), each with its own model, "
        "max_concurrent slots and max_queue; they share the port, the metrics and the "
        "response cache.",
    )
    drain_timeout: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, seconds to let answers in flight finish while new requests "
        "get 503 and /readyz says draining; then the server exits, cancelling what is left.",
    )

    @field_validator("cors_origins")
    @classmethod
    def _named_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if (
                origin == "*"
                or not origin.startswith(("http://", "https://"))
                or origin.rstrip("/") != origin
                or origin.count("/") != 2
            ):
                raise ValueError(
                    f"CORS origin {origin!r}: give scheme://host[:port], without a path or '*'"
                )
        return value

    @field_validator("corpora")
    @classmethod
    def _corpus_names(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
                raise ValueError(f"corpus name {name!r}: use letters, digits, '-', '_' or '.'")
        return value


class SourceSettings(_Section):
    """What a bundle or corpus file may hold, and what happens to a source with a bad link."""

    invalid_links: InvalidLinks = Field(
        default="error",
        description="A Paper/GitHub/paper_url/github_url field that is not a safe link "
        "(http(s) only, a public host name, no user info, no '..' segments, balanced "
        "brackets, nothing invisible or look-alike, at most 2,000 characters): 'error' "
        "raises BundleParseError/CorpusError naming the line and field; 'drop' leaves the "
        "source out and the answer's validation.sources_dropped says so.",
    )
    max_bundle_bytes: int = Field(
        default=1 << 20,
        ge=1,
        le=1 << 30,
        description="Largest bundle file read (bytes; the platform's bundles are a few KB). "
        "Only regular files are read: a directory, FIFO or device is an error.",
    )
    max_corpus_bytes: int = Field(
        default=256 << 20,
        ge=1,
        le=1 << 40,
        description="Largest corpus file read (bytes). Only regular files are read.",
    )
    max_bundle_sources: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Most entries in one bundle, and most sources in a Bundle passed to one "
        "explain()/search() call: a bundle is embedded whole on every request.",
    )
    max_corpus_sources: int = Field(
        default=1_000_000,
        ge=1,
        le=100_000_000,
        description="Most source records in one corpus file or Corpus passed to one call; "
        "a corpus is indexed once and kept, so its limit is far higher.",
    )


class Settings(BaseSettings):
    """Every knob of grounded-answer; the defaults answer offline with the stub backend."""

    model_config = SettingsConfigDict(
        env_prefix="GROUNDED_ANSWER_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    corpus: Path | None = Field(
        default=None, description="Corpus file (YAML/JSONL); None = the packaged default corpus."
    )
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    sources: SourceSettings = Field(default_factory=SourceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment, then the TOML file."""
        toml_file = os.environ.get("GROUNDED_ANSWER_CONFIG") or "grounded-answer.toml"
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_file)),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning every validation problem into a :class:`ConfigError`.

    Without ``overrides`` the result is cached by what it is built from: the
    ``GROUNDED_ANSWER_*`` environment, the working directory and the identity of the TOML
    file (path, size, modification time), so a warm ``explain()`` does not parse them
    again; an edited file or a changed variable builds anew. Each call returns its own
    copy, so changing one never changes another.
    """
    if overrides:
        return _build_settings(overrides)
    key = _settings_key()
    with _SETTINGS_LOCK:
        built = _SETTINGS.get(key)
    if built is None:
        built = _build_settings({})
        with _SETTINGS_LOCK:
            if len(_SETTINGS) >= 16:
                _SETTINGS.clear()
            _SETTINGS[key] = built
    return built.model_copy(deep=True)


_SETTINGS: dict[tuple[object, ...], Settings] = {}
_SETTINGS_LOCK = threading.Lock()


def _settings_key() -> tuple[object, ...]:
    """What the default settings are built from, as a hashable key."""
    env = tuple(
        sorted(
            (name, value)
            for name, value in os.environ.items()
            if name.upper().startswith("GROUNDED_ANSWER_") or name in ("XDG_CACHE_HOME", "HOME")
        )
    )
    toml = Path(os.environ.get("GROUNDED_ANSWER_CONFIG") or "grounded-answer.toml").absolute()
    try:
        stat = toml.stat()
    except OSError:
        return env, str(toml), None
    return env, str(toml), (stat.st_size, stat.st_mtime_ns, stat.st_ino)


def _build_settings(overrides: dict[str, Any]) -> Settings:
    config = os.environ.get("GROUNDED_ANSWER_CONFIG")
    if config and not Path(config).is_file():
        raise ConfigError(f"GROUNDED_ANSWER_CONFIG={config!r}: file does not exist")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"invalid setting {where or '(root)'}: {error['msg']}") from None
    except (ValueError, OSError) as exc:  # a malformed TOML file
        raise ConfigError(f"cannot read settings: {exc}") from None
