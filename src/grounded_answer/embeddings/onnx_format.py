"""The ONNX export on disk: where it lives, its files, and the manifest that vouches for it.

This is the contract between the module that makes exports
(:mod:`~grounded_answer.embeddings.onnx_export`) and the one that runs them
(:mod:`~grounded_answer.embeddings.onnx`); both import it and neither imports the other's
internals. Exports live in the cache directory (never in site-packages), two variants of
a model each in its own slot::

    <cache_dir>/onnx/<slot>/          exact: matches sentence-transformers within 1e-5,
                                      so it claims the model's own id and its indexes
    <cache_dir>/onnx/<slot>-int8/     weights quantized to int8: about twice as fast,
                                      close to the exact vectors (the manifest records how
                                      close), so it has an id of its own ("<model>@int8")
                                      and its own indexes

Each slot holds ``model.onnx`` (input_ids, attention_mask[, token_type_ids] ->
token_embeddings, batch and sequence axes dynamic), ``tokenizer.json`` and
``manifest.json`` (source model and file signature, sha256 of model.onnx, the check). Only
an export that passed its check, and whose source model files have not changed since,
may claim the source model's id: index manifests key on it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError, IndexStoreError
from .base import PACKAGED_MODEL, model_id_of, packaged_model_path

__all__ = [
    "FORMAT_VERSION",
    "INSTALL_HINT",
    "INT8_SUFFIX",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "TOKENIZER_FILE",
    "OnnxManifest",
    "Variant",
    "claimed_id",
    "onnx_dir",
    "read_manifest",
    "source_path",
    "source_signature",
    "source_unchanged",
    "write_manifest",
]

Variant = Literal["exact", "int8"]

FORMAT_VERSION = 1
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"
INT8_SUFFIX = "@int8"
#: The end of every "a package is missing" message about exports.
INSTALL_HINT = "they are in the default install: run scripts/setup again"


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
        return claimed_id(self.source_model_id, self.variant)


def claimed_id(source_model_id: str, variant: Variant) -> str:
    """The model id a checked export of ``variant`` claims (int8 has ``@int8`` added)."""
    return source_model_id + (INT8_SUFFIX if variant == "int8" else "")


def onnx_dir(cache_dir: Path, model: str | Path | None = None, variant: Variant = "exact") -> Path:
    """The cache directory of an export of ``model`` (None = the packaged model)."""
    model_id = model_id_of(model)
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[-40:] or "model"
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    suffix = "-int8" if variant == "int8" else ""
    return Path(cache_dir) / "onnx" / f"{slug}-{digest}{suffix}"


def source_path(model: str | Path | None) -> Path:
    """The resolved folder of the model an export is made from (None = the packaged one)."""
    if model is not None:
        return Path(model).resolve()
    return packaged_model_path().resolve()


def source_signature(path: Path) -> str:
    """A digest of every file's name, size and mtime: changes when the weights do."""
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file() and "__pycache__" not in item.parts:
            stat = item.stat()
            digest.update(
                f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def source_unchanged(manifest: OnnxManifest) -> bool:
    """Whether the model an export was made from still has the files it had then."""
    try:
        path = source_path(
            None if manifest.source_model_id == PACKAGED_MODEL else manifest.source_path
        )
        return path.is_dir() and source_signature(path) == manifest.source_signature
    except (ConfigError, OSError):
        return False


def read_manifest(directory: Path) -> OnnxManifest:
    """The manifest of the export in ``directory``.

    Raises:
        IndexStoreError: there is no export, its manifest is unreadable, or it has another
            format version.

    """
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


def write_manifest(directory: Path, manifest: OnnxManifest) -> None:
    """Replace the manifest in ``directory`` by a rename, so readers see old or new.

    Raises:
        IndexStoreError: the file cannot be written.

    """
    handle, name = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(manifest.model_dump_json(indent=2))
        os.replace(name, directory / MANIFEST_FILE)
    except OSError as exc:
        Path(name).unlink(missing_ok=True)
        raise IndexStoreError(f"cannot write {directory / MANIFEST_FILE}: {exc}") from exc
