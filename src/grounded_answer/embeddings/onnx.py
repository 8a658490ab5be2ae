"""The embedding model run with onnxruntime, so a query never needs torch.

Importing sentence-transformers (and torch with it) takes seconds; encoding one question
takes milliseconds. The same weights exported once to ONNX and run with onnxruntime and
``tokenizers`` start in a fraction of that and give the same vectors (mean pooling over
the attention mask, then L2 normalisation, as sentence-transformers does).

Exports are made and checked by :mod:`~grounded_answer.embeddings.onnx_export`; their
layout on disk is :mod:`~grounded_answer.embeddings.onnx_format`. This module only reads
them, and neither it nor :class:`OnnxEmbedder` imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import sha256
from ..errors import ConfigError, IndexStoreError
from .base import LoadedOnce, model_id_of
from .onnx_format import (
    INSTALL_HINT,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    OnnxManifest,
    Variant,
    claimed_id,
    onnx_dir,
    read_manifest,
    source_unchanged,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["OnnxEmbedder", "find_onnx", "onnx_available"]

_RUNTIMES: LoadedOnce[_Runtime] = LoadedOnce()
#: onnxruntime's optimised graph of an export, saved beside it at the first load: later
#: processes load it as it is (0.08 s against 0.18 s on 2 cores, a tenth of a cold
#: ``grounded-answer explain``), and it gives the same vectors bit for bit.
OPTIMIZED_FILE = "model.optimized.onnx"
OPTIMIZED_STAMP = "model.optimized.json"


def onnx_available() -> bool:
    """Whether onnxruntime and tokenizers are installed (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))


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
        self._manifest = read_manifest(self._dir)
        self._claims_source = self._manifest.parity_passed and source_unchanged(self._manifest)
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
        import numpy as np

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
        return _RUNTIMES.get(self._key, lambda: _Runtime(self._dir, self._manifest, self._threads))


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
                f"the ONNX embedder needs onnxruntime and tokenizers ({exc}); {INSTALL_HINT}"
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
            self.session = _session(onnxruntime, model_file, manifest, options)
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
        import numpy as np

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
    directory = onnx_dir(cache_dir, model, variant)
    try:
        stat = (directory / MANIFEST_FILE).stat()
    except OSError:
        return None
    # A warm process checks an export once: the checks read the source model's files and
    # hash the tokenizer, milliseconds per call. An export is replaced whole, so a new one
    # is a new manifest file (another inode or modification time) and is checked again.
    key = (str(model), str(directory), threads)
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _FOUND_LOCK:
        found = _FOUND.get(key)
    if found is not None and found[0] == identity:
        return found[1]
    try:
        embedder = OnnxEmbedder(directory, threads=threads)
    except IndexStoreError:
        return None
    if embedder.model_id != claimed_id(model_id_of(model), variant):
        return None
    with _FOUND_LOCK:
        _FOUND[key] = (identity, embedder)
    return embedder


_FOUND: dict[tuple[str, str, int | None], tuple[tuple[int, int, int], OnnxEmbedder]] = {}
_FOUND_LOCK = threading.Lock()


def _session(onnxruntime: Any, model_file: Path, manifest: OnnxManifest, options: Any) -> Any:
    """A session on the saved optimised graph when it is this export's, else made and saved.

    The stamp names the export (its checksum) and the onnxruntime version that optimised
    it, and the saved file's size and modification time; anything else rebuilds it. A
    cache that cannot be written only costs the optimisation at every load.
    """
    levels = onnxruntime.GraphOptimizationLevel

    def load(path: Path) -> Any:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )

    optimized = model_file.with_name(OPTIMIZED_FILE)
    stamp_file = model_file.with_name(OPTIMIZED_STAMP)
    want = {"source_sha256": manifest.onnx_sha256, "onnxruntime": onnxruntime.__version__}
    try:
        stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
        stat = optimized.stat()
        saved = stamp == {**want, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    except (OSError, ValueError):
        saved = False
    if saved:
        options.graph_optimization_level = levels.ORT_DISABLE_ALL
        return load(optimized)
    if not os.access(model_file.parent, os.W_OK):  # a read-only cache: load as before
        return load(model_file)
    # Extended, not all: the layout passes are tied to the machine, the saved file is not.
    part = optimized.with_name(f".{OPTIMIZED_FILE}.{os.getpid()}.{threading.get_ident()}")
    severity = options.log_severity_level
    options.log_severity_level = 4  # a cache it cannot write is not the user's problem
    options.graph_optimization_level = levels.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(part)
    try:
        session = load(model_file)
        os.replace(part, optimized)  # whole or not at all; another process may race us
        stat = optimized.stat()
        stamp_part = stamp_file.with_name(f".{OPTIMIZED_STAMP}.{os.getpid()}")
        stamp_part.write_text(
            json.dumps({**want, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}),
            encoding="utf-8",
        )
        os.replace(stamp_part, stamp_file)
        return session
    except Exception:  # onnxruntime raises its own types; the plain load below decides
        part.unlink(missing_ok=True)
    options.optimized_model_filepath = ""
    options.graph_optimization_level = levels.ORT_ENABLE_ALL
    options.log_severity_level = severity
    return load(model_file)


def _check_files(manifest: OnnxManifest, model_file: Path, tokenizer_file: Path) -> None:
    """Fail on a changed or truncated file; hash the model only when its stat changed."""
    try:
        stat = model_file.stat()
        if (stat.st_size, stat.st_mtime_ns) != (
            manifest.onnx_bytes,
            manifest.onnx_mtime_ns,
        ) and sha256(model_file) != manifest.onnx_sha256:
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
