"""What a name or a text says about its task: a small taxonomy of AI tasks.

Platform model names are terse ("Deblur-MSSNet-RealBlurR", "SR-RealESRGAN-x4plus"):
a sentence embedding of the raw name misses the task, so names are split into words
and known prefixes are spelled out before embedding. The evidence plan
(:mod:`grounded_answer.plan`) reads the same table to tell which related papers work on
the recommended models' task, which work on another task of the same kind of data, and
which are about other data altogether, and to order a chain of models by what each one
consumes and produces.

The table is data, not logic: extend it, don't special-case. Each entry names the data a
task takes and gives (``image``, ``video``, ``audio``, ``text``, ``3d``, ``tabular`` for
time series and tables) and a family of
close tasks, and its pattern lists the words people use for the task *and* for the effect
they see ("choppy" video, a "muffled" voice), since users describe what they saw rather than
name the task. Every pattern is a plain alternation of literals with word boundaries, so
matching is linear in the text's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = [
    "Architecture",
    "Modality",
    "TaskHint",
    "architecture_of",
    "expand_name",
    "guess_tasks",
    "name_prefix_words",
    "tasks_in_order",
]

Modality = Literal["image", "video", "audio", "text", "3d", "tabular"]


@dataclass(frozen=True)
class TaskHint:
    """A task a source name or text points to, with its typical input and output."""

    name: str
    input: str
    output: str
    action: str
    takes: Modality = "image"
    gives: Modality = "image"
    family: str = ""

    @property
    def modalities(self) -> frozenset[str]:
        """The kinds of data the task touches."""
        return frozenset((self.takes, self.gives))


def _hint(name: str, io: tuple[str, str], action: str, kinds: str, family: str) -> TaskHint:
    takes, gives = kinds.split(">")
    return TaskHint(name, io[0], io[1], action, takes, gives, family)  # type: ignore[arg-type]


# (pattern on lower-cased text, hint). Order matters: the more specific first, since the
# first task found in a name is the one its step is drawn with.
_LEXICON: tuple[tuple[str, TaskHint], ...] = (
    (r"\bdeblur|\bblur(?:ry|red)?\b|motion blur|realblur|\bsmear|\bshak(?:y|en)\b",
     _hint("image deblurring", ("a blurry or shaken photo", "a sharpened, deblurred image"),
           "removes blur and restores sharp edges", "image>image", "restoration")),
    (r"\bvsr\b|video super|video upscal|video restoration",
     _hint("video super-resolution", ("a low-resolution video", "a higher-resolution video"),
           "enlarges every frame using neighbouring frames", "video>video", "video")),
    (r"super[- ]?resolution|\bsr\b|upscal|upsampl|esrgan|swinir|\bx[248](?:plus)?\b|enlarg"
     r"|pixelat|low[- ]resolution|low[- ]res\b",
     _hint("image super-resolution", ("a low-resolution image", "a higher-resolution image"),
           "reconstructs fine detail while enlarging the image", "image>image", "restoration")),
    # "Denoising diffusion" and "denoising sequence-to-sequence" name a training objective,
    # not the task of cleaning a noisy photo.
    (r"denois(?!ing (?:diffusion|sequence|auto|score|pre))|\bnoise\b|\bnoisy\b"
     r"|\bgrain(?:y)?\b",
     _hint("image denoising", ("a noisy image", "a clean image"),
           "removes noise while keeping detail", "image>image", "restoration")),
    (r"face restor|blind face|\bgfpgan\b|codeformer",
     _hint("face restoration", ("a degraded face photo", "a restored face"),
           "restores facial detail", "image>image", "restoration")),
    (r"coloriz|colouris|black[- ]and[- ]white|grayscale|greyscale",
     _hint("image colorization", ("a black-and-white photo", "a colour photo"),
           "predicts plausible colours for each region", "image>image", "restoration")),
    (r"low[- ]light|\bdehaz|\bderain|\bhaz[ey]\b|underexpos|too dark",
     _hint("image enhancement", ("a dark or degraded photo", "an enhanced photo"),
           "corrects exposure and visibility", "image>image", "restoration")),
    (r"inpaint|outpaint|object removal|remove (?:an |the )?objects?",
     _hint("image inpainting", ("an image with a masked region", "the completed image"),
           "fills in the missing region", "image>image", "editing")),
    (r"\bmatting\b|background removal|remove (?:the )?background|cutout|cut-out",
     _hint("image matting", ("a photo", "the foreground with a transparent background"),
           "separates the foreground from the background", "image>image", "segmentation")),
    (r"style transfer|stylization|stylis|styliz|artistic style|painting style"
     r"|as if (?:\w+ ){1,3}(?:had )?painted",
     _hint("style transfer", ("a content image and a style", "the restyled image"),
           "repaints the image in the target style", "image>image", "editing")),
    (r"image editing|instruct(?:ion)?[- ]?(?:based )?edit"
     r"|\bedit(?:s|ing)? (?:a |the )?(?:photo|image)",
     _hint("image editing", ("an image and an instruction", "the edited image"),
           "changes the image as instructed", "image>image", "editing")),
    (r"text[- ]to[- ]image|image generation|image synthesis|stable diffusion|\bdall-?e\b"
     r"|latent diffusion|\bgenerate (?:an )?images?",
     _hint("text-to-image generation", ("a text prompt", "a generated image"),
           "generates an image that matches the prompt", "text>image", "generation")),
    (r"video summari|summari[sz]\w* (?:a |the )?videos?|video highlight|highlight detection"
     r"|video skimming|keyframe selection",
     _hint("video summarization", ("a long video", "a short summary video or key shots"),
           "picks the shots that matter", "video>video", "video")),
    (r"lip[- ]?reading|visual speech recognition|speechreading|read(?:ing)? (?:his |her |the )?"
     r"lips",
     _hint("lip reading", ("a silent video of a speaking face", "the spoken words as text"),
           "reads the words from the lip movements", "video>text", "speech")),
    (r"video frame interpolation|\bvfi\b|\brife\b|frame interpolation|slow[- ]motion"
     r"|frame rate|\bfps\b|choppy|jerky|stutter",
     _hint("video frame interpolation", ("a video clip", "a smoother, higher frame-rate video"),
           "synthesises intermediate frames between existing ones", "video>video", "video")),
    (r"action recognition|video classification|activity recognition",
     _hint("video action recognition", ("a video clip", "the recognised action labels"),
           "classifies the actions shown in the video", "video>text", "video")),
    (r"object tracking|\btrack(?:ing|er)\b|multi-object|\bmot\b",
     _hint("object tracking", ("a video", "object tracks across frames"),
           "follows each object from frame to frame", "video>text", "video")),
    (r"video object segmentation|\bvos\b",
     _hint("video object segmentation", ("a video", "object masks in every frame"),
           "segments the objects in every frame", "video>video", "video")),
    (r"text[- ]to[- ]video|image[- ]to[- ]video|video generation|video synthesis",
     _hint("text-to-video generation", ("a text prompt", "a generated video"),
           "generates a video that matches the prompt", "text>video", "generation")),
    (r"lip[- ]?sync|talking[- ]head|talking face|wav2lip",
     _hint("lip synchronisation", ("a face video and speech audio", "a lip-synced video"),
           "moves the lips in time with the speech", "audio>video", "video")),
    (r"sign language",
     _hint("sign language recognition", ("a video of signing", "the recognised text"),
           "recognises the signs", "video>text", "video")),
    (r"emotion recognition|speech emotion|emotion2vec|(?:angry|upset|emotion) (?:in|from) "
     r"(?:the |their )?voice",
     _hint("speech emotion recognition", ("a speech recording", "the speaker's emotion"),
           "recognises the emotion in the voice", "audio>text", "speech")),
    (r"music transcription|piano transcription|transcri\w* (?:music|piano|melod|notes)"
     r"|\b(?:polyphonic|musical|piano|melod\w*|pitch) (?:notes? )?transcri"
     r"|sheet music|\bmidi\b|written down as notes",
     _hint("music transcription", ("a music recording", "the notes (MIDI or a score)"),
           "writes down the notes that are played", "audio>text", "audio")),
    (r"voice activity|\bvad\b|speech detection",
     _hint("voice activity detection", ("an audio recording", "where someone is speaking"),
           "marks the stretches that contain speech", "audio>text", "speech")),
    (r"speaker diarization|diariz|who spoke",
     _hint("speaker diarization", ("a multi-speaker recording", "who spoke when"),
           "splits the recording by speaker", "audio>text", "speech")),
    (r"speech enhanc|enhanc\w* speech|noise suppression|noise reduction|\bdenoise audio|muffled"
     r"|echo cancel|background noise|speech denois",
     _hint("speech enhancement", ("a noisy speech recording", "clean speech"),
           "suppresses noise and keeps the voice", "audio>audio", "speech")),
    (r"voice conversion|voice cloning|voice clone|clone (?:a |my )?voice|\bvc\b",
     _hint("voice conversion", ("a speech recording", "the same words in another voice"),
           "changes the voice while keeping the words", "audio>audio", "speech")),
    (r"source separation|music separation|stem separation|demix|vocal (?:removal|isolation)"
     r"|isolate (?:the )?vocals|karaoke|separat\w* (?:the )?(?:music|vocals|stems|sources)",
     _hint("audio source separation",
           ("a mixed recording", "separate tracks (vocals, instruments)"),
           "splits the mixture into its sources", "audio>audio", "audio")),
    (r"\basr\b|speech recognition|speech-to-text|speech to text|transcri|whisper|wav2vec"
     r"|subtitl|caption(?:s|ing)? (?:for|of) (?:a |the )?(?:video|audio|speech)",
     _hint("speech recognition", ("an audio recording of speech", "a text transcript"),
           "transcribes the spoken words", "audio>text", "speech")),
    (r"\btts\b|text[- ]to[- ]speech|speech synthesis|vocoder|read (?:it |them )?aloud"
     r"|narrat(?:e|ion|or)\b|voice ?over",
     _hint("text-to-speech", ("a text", "synthesised speech audio"),
           "turns the text into speech", "text>audio", "speech")),
    (r"music generation|audio generation|musicgen|text[- ]to[- ](?:music|audio)"
     r"|compos(?:e|ing) music",
     _hint("audio generation", ("a text or melody prompt", "generated audio"),
           "generates audio that follows the prompt", "text>audio", "audio")),
    (r"sound event|audio event|audio tagging|audio classification|environmental sound",
     _hint("sound event detection", ("an audio recording", "the sounds heard and when"),
           "detects and labels the sounds", "audio>text", "audio")),
    (r"audio caption",
     _hint("audio captioning", ("an audio clip", "a sentence describing it"),
           "describes the sounds in words", "audio>text", "audio")),
    (r"handwrit|\bocr\b|character recognition|text recognition|scene text",
     _hint("optical character recognition", ("a scanned document or photo of text",
                                             "the recognised text"),
           "reads the characters in the image", "image>text", "document")),
    (r"table (?:extraction|recognition|structure|detection)"
     r"|document (?:understanding|ai|image|pars)"
     r"|layout|invoice|receipt|\bdocvqa\b|scanned|\bpdf\b|\bforms?\b",
     _hint("document understanding", ("a document image or PDF page",
                                      "structured fields or answers about the document"),
           "reads text and layout together", "image>text", "document")),
    (r"text[- ]to[- ]sql|\bsql\b|natural language (?:to|interface)\w* (?:sql|database)"
     r"|semantic parsing",
     _hint("text-to-SQL", ("a question in plain words and a database", "an SQL query"),
           "turns the question into a database query", "text>text", "code")),
    (r"translat|\bmt\b|\bnmt\b",
     _hint("machine translation", ("a text in the source language",
                                   "the text in the target language"),
           "translates the text", "text>text", "language")),
    (r"semantic search|sentence similarity|semantic similarity|sentence embedding"
     r"|text embedding|embedding model|dense (?:passage )?retrieval|passage retrieval"
     r"|neural retrieval|information retrieval|\brerank|text ranking",
     _hint("semantic search", ("a query and a collection of texts", "the most similar texts"),
           "embeds texts so that similar meanings lie close together", "text>text",
           "language")),
    (r"summari",
     _hint("text summarization", ("a long text", "a short summary"),
           "condenses the text into its key points", "text>text", "language")),
    (r"text classif|document classif|topic classif|intent (?:classif|detection)"
     r"|spam (?:detection|filter)",
     _hint("text classification", ("a text", "its category"),
           "assigns the text to categories", "text>text", "language")),
    (r"sentiment|opinion mining|emotion classification",
     _hint("sentiment analysis", ("a text", "its sentiment"),
           "tells whether the text is positive or negative", "text>text", "language")),
    (r"named entit|\bner\b|entity recognition",
     _hint("named-entity recognition", ("a text", "the names of people, places, organisations"),
           "finds and labels the names in the text", "text>text", "language")),
    (r"question answering|\bqa\b|reading comprehension",
     _hint("question answering", ("a question and a text", "the answer"),
           "finds the answer in the text", "text>text", "language")),
    (r"code generation|code completion|program synthesis|source code",
     _hint("code generation", ("a description or partial code", "code"),
           "writes code that does what is asked", "text>text", "code")),
    (r"visual question|\bvqa\b",
     _hint("visual question answering", ("an image and a question", "the answer"),
           "answers questions about the image", "image>text", "vision-language")),
    (r"caption",
     _hint("image captioning", ("an image", "a caption"),
           "describes the image in words", "image>text", "vision-language")),
    (r"medical image segmentation|\bu-?net\b|tumou?r|\bmri\b|\bct scan|lesion",
     _hint("medical image segmentation", ("a medical scan", "masks of the structures of interest"),
           "outlines organs or lesions in the scan", "image>image", "segmentation")),
    (r"segment",
     _hint("image segmentation", ("an image", "segmentation masks"),
           "labels the pixels of each object or region", "image>image", "segmentation")),
    (r"pose estimation|keypoint|human pose|body pose|body landmarks",
     _hint("pose estimation", ("an image of people", "body keypoints"),
           "locates each person's joints", "image>text", "detection")),
    (r"face recognition|face verification|face identification",
     _hint("face recognition", ("a face photo", "who it is"),
           "matches the face against known identities", "image>text", "detection")),
    (r"forger|manipulat\w* (?:detection|localization)|tamper|splic|forensic|deepfake"
     r"|copy-move|fake (?:image|photo)s?",
     _hint("image forensics", ("a photo that may be edited", "where it was manipulated"),
           "finds and outlines the edited regions", "image>text", "detection")),
    (r"crowd counting|crowd density|count(?:ing)? (?:the )?(?:people|persons|crowd)"
     r"|how many people",
     _hint("crowd counting", ("a photo of a crowd", "the number of people"),
           "estimates how many people are in the image", "image>text", "detection")),
    (r"forecast|time[- ]series prediction|demand prediction|sales prediction",
     _hint("time-series forecasting", ("past values of a time series", "predicted future values"),
           "predicts how the series continues", "tabular>tabular", "time series")),
    (r"time[- ]series classif",
     _hint("time-series classification", ("a time series", "its class label"),
           "assigns the series to categories", "tabular>text", "time series")),
    (r"tabular (?:data|classification|regression|learning|prediction)|gradient[- ]boost"
     r"|\bxgboost\b",
     _hint("tabular prediction", ("a table of features", "a predicted label or value"),
           "predicts a target from the table's columns", "tabular>text", "tabular")),
    (r"time[- ]series anomal|anomal\w* (?:detection )?(?:in|for|on|of) (?:multivariate |"
     r"univariate )?time[- ]series",
     _hint("time-series anomaly detection", ("a time series", "the time steps that look "
           "abnormal"), "flags the stretches that deviate from normal", "tabular>text",
           "time series")),
    (r"anomaly detection|defect detection|\banomal|\bdefects?\b",
     _hint("anomaly detection", ("an image of a product or scene", "where it looks abnormal"),
           "flags what deviates from normal examples", "image>text", "detection")),
    (r"object detection|\bdetect(?:ion|or|s)?\b|\byolo\b|\bdetr\b|bounding box",
     _hint("object detection", ("an image", "bounding boxes with class labels"),
           "locates and classifies the objects", "image>text", "detection")),
    (r"depth estimation|\bdepth\b",
     _hint("depth estimation", ("an image", "a depth map"),
           "predicts the distance of every pixel", "image>image", "3d")),
    (r"\bnerf\b|neural radiance|novel view|3d reconstruction|image[- ]to[- ]3d|text[- ]to[- ]3d"
     r"|\bmesh\b|gaussian splatting|point cloud",
     _hint("3D reconstruction", ("photos or a prompt", "a 3D model"),
           "builds a 3D representation of the scene or object", "image>3d", "3d")),
    (r"classif(?:y|ies|ied|ication|ications)\b|image recognition",
     _hint("image classification", ("an image", "class labels"),
           "assigns the image to categories", "image>text", "recognition")),
    (r"quality assessment|\biqa\b",
     _hint("image quality assessment", ("an image", "a quality score"),
           "rates how good the image looks", "image>text", "assessment")),
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
    "embed": "text embedding",
    "sep": "separation",
    "det": "detection",
    "vc": "voice conversion",
    "se": "speech enhancement",
    "ner": "named entity recognition",
    "qa": "question answering",
    "i2i": "image to image",
    "t2i": "text to image",
    "t2v": "text to video",
    "t2s": "text to speech",
    "s2t": "speech to text",
    "summ": "summarization",
    "cls": "classification",
    "senti": "sentiment analysis",
    "pose": "pose estimation",
    "diar": "speaker diarization",
    "htr": "handwritten text recognition",
    "colorize": "colorization",
    "matting": "matting",
    "inpaint": "inpainting",
    "llie": "low-light image enhancement",
    "amt": "automatic music transcription",
    "ser": "speech emotion recognition",
    "vsum": "video summarization",
    "sql": "text-to-SQL",
    "tsr": "table structure recognition",
    "count": "crowd counting",
    "imdl": "image manipulation detection",
    "forensics": "image forensics",
    "caption": "captioning",
}


#: CamelCase parts: "ImageTo3D" -> Image, To, 3D; "HTDemucs" -> HT, Demucs.
_CAMEL = re.compile(r"\d+[A-Z](?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


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
        parts = _CAMEL.findall(token)
        if len(parts) > 1:
            # "VideoCls" -> "Video classification", "ImageTo3D" -> "Image To 3D". Two-letter
            # capitals are left out: "SR" inside "TripoSR" is a product name, not
            # super-resolution (a task prefix is its own token: "SR-RealESRGAN").
            words.extend(_ABBREVIATIONS.get(part.lower(), part) for part in parts
                         if len(part) > 2 or not part.isalpha() or not part.isupper())
    return " ".join(words)


def name_prefix_words(name: str) -> str:
    """What a platform name's first part spells out, when the table knows no task for it.

    Platform names put the task first ("LowLight-ZeroDCE-SICE", "ASR-Whisper-large-v3"),
    and a task the table has never seen is still readable there: "low light", "automatic
    speech recognition". Only a known abbreviation or a compound of several words counts:
    a single word may be the product itself ("Whisper-large"). '' when there is none.
    """
    tokens = [token for token in re.split(r"[\s_\-/.:]+", name) if token]
    if len(tokens) < 2:
        return ""
    first = tokens[0]
    spelled = _ABBREVIATIONS.get(first.lower())
    if spelled:
        return spelled
    parts = _CAMEL.findall(first)
    if sum(part.isalpha() for part in parts) < 2:  # "BLIP2" is a product, "LowLight" words
        return ""
    return " ".join(_ABBREVIATIONS.get(part.lower(), part if part.isupper() else part.lower())
                    for part in parts)


def guess_tasks(text: str) -> list[TaskHint]:
    """Task hints found in ``text`` in table order, without duplicates."""
    return list(_guess_tasks(text))


@lru_cache(maxsize=4096)
def _guess_tasks(text: str) -> tuple[TaskHint, ...]:
    return tuple(hint for _, hint in _matches(text))


def _matches(text: str) -> list[tuple[int, TaskHint]]:
    """(position, hint) in table order; a match inside a more specific one does not count.

    "video summarization" is not also text summarization, nor "table detection" object
    detection: the table lists the specific task first, and its match claims the span.
    """
    lowered = text.lower()
    claimed: list[tuple[int, int]] = []
    found: list[tuple[int, TaskHint]] = []
    for pattern, hint in _COMPILED:
        for match in pattern.finditer(lowered):
            start, end = match.span()
            if not any(a <= start and end <= b for a, b in claimed):
                claimed.append((start, end))
                found.append((start, hint))
                break
    return found


@lru_cache(maxsize=4096)
def tasks_in_order(text: str) -> tuple[TaskHint, ...]:
    """Task hints found in ``text`` in the order the text names them.

    A summary that lists applications in passing ("from segmentation to detection") names
    its own task later; the title, or the first task a name spells out, is what a source
    is about.
    """
    return tuple(hint for _, hint in sorted(_matches(text), key=lambda item: item[0]))


@dataclass(frozen=True)
class Architecture:
    """A general-purpose network that task models are built on, and the data it reads."""

    name: str
    reads: frozenset[str]


_VISUAL = frozenset({"image", "video", "3d"})
# Papers that introduced an architecture many task models are built on, by title. A
# related paper of this kind is in a bundle as the mechanism behind the model when it
# reads the model's kind of data (the Transformer reads any).
_ARCHITECTURES: tuple[tuple[re.Pattern[str], Architecture], ...] = tuple(
    (re.compile(pattern), Architecture(name, reads)) for pattern, name, reads in (
        (r"^attention is all you need$", "Transformer",
         frozenset({"image", "video", "audio", "text", "3d", "tabular"})),
        (r"^bert: pre-training of deep bidirectional", "BERT", frozenset({"text"})),
        (r"^exploring the limits of transfer learning with a unified text-to-text", "T5",
         frozenset({"text"})),
        (r"^language models are (?:few-shot learners|unsupervised multitask)", "GPT",
         frozenset({"text"})),
        (r"^an image is worth 16x16 words", "Vision Transformer (ViT)", _VISUAL),
        (r"^deep residual learning for image recognition", "ResNet", _VISUAL),
        (r"^very deep convolutional networks for large-scale image", "VGG", _VISUAL),
        (r"^going deeper with convolutions", "Inception (GoogLeNet)", _VISUAL),
        (r"^u-net: convolutional networks for biomedical", "U-Net", _VISUAL),
    )
)


def architecture_of(title: str) -> Architecture | None:
    """The architecture a paper introduced, when its title is one of the well-known ones."""
    lowered = " ".join(title.lower().split()).rstrip(".")
    return next((arch for pattern, arch in _ARCHITECTURES if pattern.search(lowered)), None)
