"""Turning text into vectors: one protocol, two ways to run the model, one choice.

The modules, from the bottom up (each imports only those above it)::

    base                   the Embedder protocol, the packaged model
    sentence_transformers  the model run by sentence-transformers and torch
    onnx_format            the ONNX export on disk: slots, files, manifest
    onnx                   running a checked export with onnxruntime, without torch
    onnx_export            making and checking exports (needs torch)
    devices                where index builds run (a GPU when there is one) and the
                           parity check that lets its vectors stand for the CPU's
    _select                select_embedder() and build_embedder(): which of them
                           answers, from the settings

Heavy packages (torch, sentence-transformers, onnxruntime) load on first use only.
"""

from ._select import build_embedder, select_embedder
from .base import PACKAGED_MODEL, Embedder
from .devices import BuildEmbedder, BuildRecord, check_parity, resolve_device
from .onnx import OnnxEmbedder
from .sentence_transformers import SentenceTransformerEmbedder

__all__ = [
    "PACKAGED_MODEL",
    "BuildEmbedder",
    "BuildRecord",
    "Embedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "build_embedder",
    "check_parity",
    "resolve_device",
    "select_embedder",
]
