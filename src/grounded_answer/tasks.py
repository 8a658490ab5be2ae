"""What a model name says about its task, for passages and the offline answer.

Platform model names are terse ("Deblur-MSSNet-RealBlurR", "SR-RealESRGAN-x4plus"):
a sentence embedding of the raw name misses the task, so names are split into words
and known prefixes are spelled out before embedding, and the offline backend names the
task from the same table. The table is data, not logic: extend it, don't special-case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TaskHint", "expand_name", "guess_tasks"]


@dataclass(frozen=True)
class TaskHint:
    """A task a source name or text points to, with its typical input and output."""

    name: str
    input: str
    output: str
    action: str


# (pattern on lower-cased text, hint). Order matters: the more specific first.
_LEXICON: tuple[tuple[str, TaskHint], ...] = (
    (r"\bdeblur|\bblur(?:ry|red)?\b|motion blur|realblur", TaskHint(
        "image deblurring", "a blurry or shaken photo", "a sharpened, deblurred image",
        "removes blur and restores sharp edges")),
    (r"super[- ]?resolution|\bsr\b|upscal|upsampl|esrgan|swinir|\bx[248](?:plus)?\b|enlarg",
     TaskHint("image super-resolution", "a low-resolution image", "a higher-resolution image",
              "reconstructs fine detail while enlarging the image")),
    (r"denois|\bnoise\b", TaskHint(
        "image denoising", "a noisy image", "a clean image", "removes noise while keeping detail")),
    (r"inpaint", TaskHint("image inpainting", "an image with a masked region",
                          "the completed image", "fills in the missing region")),
    (r"video frame interpolation|\bvfi\b|\brife\b|frame interpolation", TaskHint(
        "video frame interpolation", "a video clip", "a smoother, higher frame-rate video",
        "synthesises intermediate frames between existing ones")),
    (r"action recognition|video classification", TaskHint(
        "video action recognition", "a video clip", "the recognised action labels",
        "classifies the actions shown in the video")),
    (r"\bvsr\b|video super", TaskHint(
        "video super-resolution", "a low-resolution video", "a higher-resolution video",
        "enlarges every frame using neighbouring frames")),
    (r"\basr\b|speech recognition|speech-to-text|transcri|whisper|wav2vec", TaskHint(
        "speech recognition", "an audio recording of speech", "a text transcript",
        "transcribes the spoken words")),
    (r"\btts\b|text[- ]to[- ]speech|speech synthesis|vocoder", TaskHint(
        "text-to-speech", "a text", "synthesised speech audio", "turns the text into speech")),
    (r"music generation|audio generation|musicgen|text[- ]to[- ](?:music|audio)", TaskHint(
        "audio generation", "a text or melody prompt", "generated audio",
        "generates audio that follows the prompt")),
    (r"\bocr\b|character recognition|text recognition", TaskHint(
        "optical character recognition", "a scanned document or photo of text",
        "the recognised text", "reads the characters in the image")),
    (r"document|layout|invoice|receipt|\bdocvqa\b", TaskHint(
        "document understanding", "a document image or PDF page",
        "structured fields or answers about the document", "reads text and layout together")),
    (r"translat|\bmt\b|\bnmt\b", TaskHint(
        "machine translation", "a text in the source language", "the text in the target language",
        "translates the text")),
    (r"summari", TaskHint("text summarization", "a long text", "a short summary",
                          "condenses the text into its key points")),
    (r"segment", TaskHint("image segmentation", "an image", "segmentation masks",
                          "labels the pixels of each object or region")),
    (r"detect|\byolo\b|\bdetr\b", TaskHint(
        "object detection", "an image", "bounding boxes with class labels",
        "locates and classifies the objects")),
    (r"depth", TaskHint("depth estimation", "an image", "a depth map",
                        "predicts the distance of every pixel")),
    (r"caption", TaskHint("image captioning", "an image", "a caption",
                          "describes the image in words")),
    (r"classif|image recognition", TaskHint("image classification", "an image", "class labels",
                                  "assigns the image to categories")),
    (r"quality assessment|\biqa\b", TaskHint(
        "image quality assessment", "an image", "a quality score",
        "rates how good the image looks")),
)
_COMPILED = tuple((re.compile(pattern), hint) for pattern, hint in _LEXICON)

_ABBREVIATIONS = {
    "sr": "super-resolution",
    "asr": "automatic speech recognition",
    "tts": "text to speech",
    "ocr": "optical character recognition",
    "vfi": "video frame interpolation",
    "vsr": "video super-resolution",
    "mt": "machine translation",
    "deblur": "deblurring",
    "denoise": "denoising",
    "seg": "segmentation",
    "det": "detection",
}


@lru_cache(maxsize=4096)
def expand_name(name: str) -> str:
    """Spell a terse model name out as words.

    "Deblur-MSSNet-RealBlurR" becomes "deblurring MSSNet MSS Net RealBlurR Real Blur R".

    CamelCase, digits and separators are split; known task abbreviations are spelled out.
    """
    words: list[str] = []
    for token in re.split(r"[\s_\-/.:]+", name):
        if not token:
            continue
        spelled = _ABBREVIATIONS.get(token.lower())
        if spelled:
            words.append(spelled)
            continue
        words.append(token)
        parts = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", token)
        if len(parts) > 1:
            words.extend(parts)
    return " ".join(words)


def guess_tasks(text: str) -> list[TaskHint]:
    """Task hints found in ``text`` in table order, without duplicates."""
    return list(_guess_tasks(text))


@lru_cache(maxsize=4096)
def _guess_tasks(text: str) -> tuple[TaskHint, ...]:
    lowered = text.lower()
    return tuple(hint for pattern, hint in _COMPILED if pattern.search(lowered))
