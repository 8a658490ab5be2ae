"""Making the ONNX exports that :mod:`~grounded_answer.embeddings.onnx` runs, and checking them.

Exporting needs torch (it traces the model) and happens where torch is loaded anyway:
when an index is built. Each export is written to a staging directory and renamed into
place, then checked before anything uses it: the exact export against
sentence-transformers on :data:`PARITY_TEXTS` (largest component difference <= 1e-5),
the int8 export against the exact one (smallest cosine >= 0.97). The result, pass or
fail, is recorded in the manifest, so a failure is not retried on every build.
:func:`prepare_onnx` finds a checked export or makes one, under a file lock so that
processes sharing a cache export once.
"""

from __future__ import annotations

import importlib.util
import logging
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._files import locked, replaced_dir, sha256
from ..errors import ConfigError, IndexStoreError
from .base import PACKAGED_MODEL, Embedder, model_id_of
from .onnx import OnnxEmbedder, find_onnx, onnx_available
from .onnx_format import (
    FORMAT_VERSION,
    INSTALL_HINT,
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    OnnxManifest,
    Variant,
    onnx_dir,
    read_manifest,
    source_path,
    source_signature,
    source_unchanged,
    write_manifest,
)
from .sentence_transformers import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "AGREEMENT_TOLERANCE",
    "OPSET",
    "PARITY_TEXTS",
    "PARITY_TOLERANCE",
    "export_onnx",
    "prepare_onnx",
    "quantize_onnx",
    "verify_parity",
    "verify_quantized",
]

OPSET = 17
PARITY_TOLERANCE = 1e-5
# Measured on all-MiniLM-L6-v2: 0.980 at worst (empty text), 0.99+ for real text.
AGREEMENT_TOLERANCE = 0.97

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
    if not onnx_available():
        raise ConfigError(f"the ONNX embedder needs onnxruntime and tokenizers; {INSTALL_HINT}")
    found = find_onnx(model, cache_dir, threads=threads, variant=variant)
    if found is not None:
        return found
    exact = None
    if variant == "int8":
        exact = prepare_onnx(
            model, cache_dir, threads=threads, reference=reference, progress=progress
        )
    step = progress or (lambda _: None)
    target = onnx_dir(cache_dir, model, variant)
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target):
        found = find_onnx(model, cache_dir, threads=threads, variant=variant)
        if found is not None:
            return found
        earlier = _failed_before(target)
        if earlier is not None:
            raise IndexStoreError(f"{_failure(earlier)}; not used")
        if exact is not None:
            step("quantizing the weights to int8")
            quantize_onnx(onnx_dir(cache_dir, model), target, _locked=True)
            step("checking int8 against the exact export")
            verify_quantized(target, exact, _locked=True)
        else:
            step("exporting the model to ONNX (loads torch once)")
            export_onnx(model, target, threads=threads, _locked=True)
            if reference is None:
                reference = SentenceTransformerEmbedder(model, threads=threads)
            step("checking the export against sentence-transformers")
            verify_parity(target, reference, _locked=True)
    found = find_onnx(model, cache_dir, threads=threads, variant=variant)
    if found is None:  # pragma: no cover - the checks raised already
        raise IndexStoreError(f"the ONNX export in {target} is not usable")
    return found


def _failed_before(target: Path) -> OnnxManifest | None:
    try:
        manifest = read_manifest(target)
    except IndexStoreError:
        return None
    if not manifest.checked or manifest.parity_passed:
        return None
    return manifest if source_unchanged(manifest) else None


def _failure(manifest: OnnxManifest) -> str:
    if manifest.variant == "int8":
        return (
            f"the int8 export of {manifest.source_model_id} reached a cosine of only "
            f"{manifest.agreement_min_cosine:.4f} to the exact one "
            f"(tolerance {manifest.agreement_tolerance})"
        )
    return (
        f"the ONNX export of {manifest.source_model_id} differed from "
        f"sentence-transformers by {manifest.parity_max_abs_diff:.2e} "
        f"(tolerance {manifest.parity_tolerance:.0e})"
    )


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
    with locked(target):
        return _export(model, target, opset, threads)


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
        ConfigError: ``texts`` is empty (nothing checked cannot pass).

    """
    target = Path(target_dir)
    if reference is None:
        manifest = read_manifest(target)
        source = None if manifest.source_model_id == PACKAGED_MODEL else manifest.source_path
        reference = SentenceTransformerEmbedder(source, threads=1)
    updated, diff = _check(
        target,
        reference,
        texts,
        _locked,
        lambda want, rows: max(float(np.max(np.abs(got - want))) for got in rows),
        lambda value: {"parity_max_abs_diff": value, "parity_tolerance": tolerance},
    )
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
        raise ConfigError(f"exporting to ONNX needs the onnx package; {INSTALL_HINT}")
    source_dir = source_path(model)
    # The shared model object: at index time it is the one that just encoded the corpus.
    loaded: Any = SentenceTransformerEmbedder(model, threads=threads).loaded()
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

    with _staged(target, f"exporting {model_id_of(model)} to ONNX") as staging:
        tokenizer_file = staging / TOKENIZER_FILE
        shipped = source_dir / TOKENIZER_FILE
        if shipped.is_file():
            shutil.copyfile(shipped, tokenizer_file)
        else:
            hf_tokenizer.backend_tokenizer.save(str(tokenizer_file))
        # Trace with a padded batch of two, so the graph is the one for masked input.
        sample = hf_tokenizer(
            ["a short text", "a longer text, so that the first one is padded to match it"],
            padding=True,
            truncation=True,
            max_length=max_seq_length,
            return_tensors="pt",
        )
        args = tuple(sample[name] for name in input_names)
        axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "token_embeddings"]}
        wrapper = _TokenEmbeddings(transformer).eval()
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated and the tracer warns about Python
            # branches on shapes; parity on padded batches is what proves the graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                args,
                str(staging / MODEL_FILE),
                dynamo=False,
                opset_version=opset,
                input_names=input_names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        stat = (staging / MODEL_FILE).stat()
        manifest = OnnxManifest(
            format_version=FORMAT_VERSION,
            source_model_id=model_id_of(model),
            source_path=str(source_dir),
            source_signature=source_signature(source_dir),
            opset=opset,
            input_names=input_names,
            dimension=int(loaded.get_embedding_dimension()),
            max_seq_length=max_seq_length,
            pad_id=pad_id,
            pad_token=pad_token,
            onnx_sha256=sha256(staging / MODEL_FILE),
            onnx_bytes=stat.st_size,
            onnx_mtime_ns=stat.st_mtime_ns,
            tokenizer_sha256=sha256(tokenizer_file),
            exported_with=_versions("torch", "transformers", "sentence_transformers", "onnx"),
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
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
    mean = (
        mode in ("mean", ["mean"])
        if mode is not None
        else (
            config.get("pooling_mode_mean_tokens") is True
            and not any(
                value is True
                for key, value in config.items()
                if key.startswith("pooling_mode_") and key != "pooling_mode_mean_tokens"
            )
        )
    )
    if not mean or names != ["Transformer", "Pooling", "Normalize"]:
        raise ConfigError(
            f"only mean pooling between the transformer and normalisation is supported for "
            f"ONNX export; this model is {' -> '.join(names)} with pooling {config}"
        )


def _versions(*modules: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in modules:
        try:
            found[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def quantize_onnx(
    exact_dir: str | Path, target_dir: str | Path, *, _locked: bool = False
) -> OnnxManifest:
    """Write an int8 copy of the checked exact export in ``exact_dir`` to ``target_dir``.

    onnxruntime's dynamic quantization, per output channel, of the MatMul weights only:
    activations stay float and are quantized per call, embeddings and layer norms stay
    float. That roughly halves the time of a query on one core, at a small loss of cosine
    to the exact vectors (benchmarks/run.py measures both; the manifest records the
    check). The agreement check is :func:`verify_quantized`'s job.

    Raises:
        ConfigError: onnxruntime's quantization tools (which need onnx) are missing.
        IndexStoreError: the exact export is not checked, or the write failed.

    """
    exact_dir, target = Path(exact_dir), Path(target_dir)
    exact = read_manifest(exact_dir)
    if exact.variant != "exact" or not exact.parity_passed:
        raise IndexStoreError(f"{exact_dir} is not a checked exact export to quantize")
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError(f"quantizing an ONNX export needs the onnx package; {INSTALL_HINT}")
    if _locked:
        return _quantize(exact, exact_dir, target)
    with locked(target):
        return _quantize(exact, exact_dir, target)


def verify_quantized(
    target_dir: str | Path,
    reference: Embedder,
    *,
    texts: Sequence[str] = PARITY_TEXTS,
    tolerance: float = AGREEMENT_TOLERANCE,
    _locked: bool = False,
) -> OnnxManifest:
    """Check the int8 export in ``target_dir`` against ``reference`` (the exact export).

    Every text is encoded alone and in one padded batch; the smallest cosine between an
    int8 vector and the exact one is recorded in the manifest, pass or fail.

    Raises:
        IndexStoreError: the smallest cosine is below ``tolerance`` (recorded first, so
            the export is never used), or the export cannot be loaded.
        ConfigError: ``texts`` is empty (nothing checked cannot pass).

    """
    target = Path(target_dir)
    updated, worst = _check(
        target,
        reference,
        texts,
        _locked,
        lambda want, rows: min(float(np.min(np.sum(got * want, axis=1))) for got in rows),
        lambda value: {"agreement_min_cosine": value, "agreement_tolerance": tolerance},
    )
    if not updated.parity_passed:
        raise IndexStoreError(
            f"the int8 export in {target} reaches a cosine of only {worst:.4f} to the exact "
            f"vectors (tolerance {tolerance}); it will not be used"
        )
    return updated


def _check(
    target: Path,
    reference: Embedder,
    texts: Sequence[str],
    held: bool,
    measure: Callable[[NDArray[np.float32], list[NDArray[np.float32]]], float],
    fields: Callable[[float], dict[str, float]],
) -> tuple[OnnxManifest, float]:
    """Encode ``texts`` in one padded batch and one by one; measure both; record it."""
    texts = list(texts)
    if not texts:
        raise ConfigError("checking an ONNX export needs at least one text")
    manifest = read_manifest(target)
    candidate = OnnxEmbedder(target, threads=1)
    expected = reference.encode(texts, batch_size=len(texts))
    value = measure(
        expected,
        [
            candidate.encode(texts, batch_size=len(texts)),
            np.vstack([candidate.encode([text]) for text in texts]),
        ],
    )
    updated = manifest.model_copy(
        update={
            **fields(value),
            "parity_texts": len(texts),
            "parity_checked_with": {
                **_versions("onnxruntime", "tokenizers"),
                "reference": reference.model_id,
            },
        }
    )
    _record(target, updated, held)
    return updated, value


def _quantize(exact: OnnxManifest, exact_dir: Path, target: Path) -> OnnxManifest:
    # onnxruntime ships no type information: typed as Any, kept out of mypy's way.
    quantization: Any = importlib.import_module("onnxruntime.quantization")
    with _staged(target, f"quantizing {exact.source_model_id}") as staging, _quiet_root():
        quantization.quantize_dynamic(
            exact_dir / MODEL_FILE,
            staging / MODEL_FILE,
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
        shutil.copyfile(exact_dir / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        stat = (staging / MODEL_FILE).stat()
        manifest = OnnxManifest.model_validate(
            {
                **exact.model_dump(include=set(OnnxManifest.model_fields) - _CHECK_FIELDS),
                "variant": "int8",
                "quantized_from_sha256": exact.onnx_sha256,
                "onnx_sha256": sha256(staging / MODEL_FILE),
                "onnx_bytes": stat.st_size,
                "onnx_mtime_ns": stat.st_mtime_ns,
                "exported_with": {**exact.exported_with, **_versions("onnxruntime")},
            }
        )
        (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    return manifest


_CHECK_FIELDS = {
    "parity_max_abs_diff",
    "parity_tolerance",
    "parity_texts",
    "parity_checked_with",
    "agreement_min_cosine",
    "agreement_tolerance",
}


@contextmanager
def _staged(target: Path, what: str) -> Iterator[Path]:
    """:func:`replaced_dir`, with failures turned into typed errors naming ``target``."""
    try:
        with replaced_dir(target) as staging:
            yield staging
    except OSError as exc:
        raise IndexStoreError(f"cannot write the ONNX export {target}: {exc}") from exc
    except (IndexStoreError, ConfigError):
        raise
    except Exception as exc:
        raise IndexStoreError(f"{what} failed: {exc}") from exc


@contextmanager
def _quiet_root() -> Iterator[None]:
    # onnxruntime's quantizer advises "pre-processing" on the root logger at every call.
    def drop(record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def _record(target: Path, manifest: OnnxManifest, held: bool) -> None:
    if held:  # the caller holds the export's lock already
        write_manifest(target, manifest)
        return
    with locked(target):
        write_manifest(target, manifest)
