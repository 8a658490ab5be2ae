"""The evidence plan: invariants whatever k is, relevance with reasons, verdict, skeleton."""

from __future__ import annotations

import json
from typing import Any

import pytest
from markdown_it import MarkdownIt

from grounded_answer import Settings, explain, load_settings, parse_bundle
from grounded_answer.backends.base import CompletionRequest
from grounded_answer.backends.stub import StubBackend
from grounded_answer.planning import Relevance, make_plan, read_question
from grounded_answer.sources.bundle import Bundle
from grounded_answer.sources.corpus import Role, Source

from ..support.fakes import HashEmbedder
from ..support.paths import SEED

PREAMBLE = 'You are an AI scientist.\n\nA user has asked the following question:\n"{q}"\n\n'

DISTRACTORS = [
    (
        "Learning Transferable Visual Models From Natural Language Supervision",
        "CLIP learns image representations from image and caption pairs for zero-shot image "
        "classification.",
    ),
    (
        "End-to-End Object Detection with Transformers",
        "DETR detects objects in images with a transformer and bipartite matching.",
    ),
    (
        "HiFi-GAN: Generative Adversarial Networks for Efficient and High Fidelity Speech "
        "Synthesis",
        "A vocoder that turns mel spectrograms into speech audio.",
    ),
    ("Segment Anything", "A promptable model that segments any object in an image."),
    ("Simple and Controllable Music Generation", "MusicGen writes music from a text prompt."),
    (
        "PP-OCR: A Practical Ultra Lightweight OCR System",
        "Reads printed text in photos and scans: optical character recognition.",
    ),
    (
        "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow",
        "Estimates the motion of every pixel between two video frames.",
    ),
    (
        "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis",
        "Builds a 3D scene from many photos and renders new views.",
    ),
    (
        "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech Representations",
        "Learns speech representations from raw audio for speech recognition.",
    ),
]
RELEVANT = [
    (
        "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
        "A GAN for single image super-resolution that recovers realistic textures when an image "
        "is upscaled four times.",
    ),
    (
        "Designing a Practical Degradation Model for Deep Blind Image Super-Resolution",
        "BSRGAN trains super-resolution networks on realistic degradations so that real "
        "low-quality photos can be enlarged.",
    ),
]


def crowded_bundle(question: str) -> Bundle:
    """One recommended model with no summary among 11 related papers (2 relevant)."""
    lines = [
        PREAMBLE.format(q=question),
        "### Recommended AI Models:",
        "Model: SR-RealESRGAN-x4plus",
        "Paper: https://arxiv.org/abs/2107.10833",
        "GitHub: https://github.com/xinntao/Real-ESRGAN",
        "",
        "### Related Papers:",
    ]
    papers = DISTRACTORS[:4] + RELEVANT[:1] + DISTRACTORS[4:] + RELEVANT[1:]
    for n, (title, summary) in enumerate(papers):
        lines += [
            f"Model: {title}",
            f"Paper: https://arxiv.org/abs/2001.{n:05d}",
            f"Summary: {summary}",
            "",
        ]
    return parse_bundle("\n".join(lines) + "\nAnswer:\n")


def model_and_paper(model: str, title: str, summary: str) -> list[Source]:
    """A recommended model (no summary) and one related paper."""
    return [
        Source(id="m", role="model", title=model, paper_url="https://a.org/m"),
        Source(id="p", role="paper", title=title, paper_url="https://a.org/p", summary=summary),
    ]


@pytest.fixture
def small_k(settings: Settings) -> Settings:
    return load_settings(index=settings.index.model_dump(), retrieval={"k": 2})


@pytest.mark.slow
def test_a_recommended_model_never_vanishes_among_distractors(
    small_k: Settings, real_embedder: Any
) -> None:
    bundle = crowded_bundle("My old photos are tiny. Can AI make them bigger and still sharp?")
    answer = explain(bundle=bundle, settings=small_k, embedder=real_embedder)
    model = bundle.corpus.sources[0]
    assert answer.answerable and answer.workflow is not None
    assert [s.source_id for s in answer.workflow.steps] == [model.id]
    assert answer.references[0].source_id == model.id
    assert answer.references[0].role is Role.MODEL
    assert model.title in answer.task.statement  # the model, not a paper, is "recommended"
    cited = {r.title for r in answer.references}
    assert {title for title, _ in RELEVANT} <= cited
    assert not cited & {title for title, _ in DISTRACTORS}
    assert answer.plan is not None
    judged = {s.title: s for s in answer.plan.sources}
    assert all(judged[t].relevance is Relevance.RELEVANT for t, _ in RELEVANT)
    for title, _ in DISTRACTORS:
        assert not judged[title].cited and judged[title].reason


@pytest.mark.slow
def test_a_question_the_embedder_cannot_read_follows_the_recommendation(
    settings: Settings, real_embedder: Any
) -> None:
    korean = crowded_bundle("오래된 저해상도 사진을 크게 확대해도 선명하게 만들 수 있나요?")
    answer = explain(bundle=korean, settings=settings, embedder=real_embedder)
    assert answer.answerable and answer.plan is not None
    assert answer.plan.question.script == "Hangul" and not answer.plan.question.readable
    assert answer.plan.verdict.basis == "recommendation"
    assert "cannot read" in answer.validation.plan[0]
    assert "not in English" in answer.note  # the stub says it answers in English
    assert "*Note:* The question is not in English" in answer.to_markdown()
    assert {s.source_id for s in (answer.workflow.steps if answer.workflow else [])} == {
        korean.corpus.sources[0].id
    }
    # An English question off the topic is still declined.
    stocks = explain(
        "Which stocks should I buy this year?",
        bundle=korean,
        settings=settings,
        embedder=real_embedder,
    )
    assert not stocks.answerable and stocks.workflow is None and stocks.references == []
    assert stocks.plan is not None and stocks.plan.verdict.basis == "similarity"


@pytest.mark.slow
def test_the_seed_connects_what_the_user_did_with_what_the_model_does(
    settings: Settings, real_embedder: Any
) -> None:
    from grounded_answer import load_bundle

    answer = explain(bundle=load_bundle(SEED), settings=settings, embedder=real_embedder)
    statement = answer.task.statement.lower()
    assert "super-resolution" in statement and "deblurring" in statement
    cited = [r.title for r in answer.references]
    assert cited[0] == "Deblur-MSSNet-RealBlurR" and any("FeatSharp" in t for t in cited)
    assert not any("ImageNet-Hard" in t for t in cited)
    markdown = answer.to_markdown()
    why = next(line for line in markdown.splitlines() if line.startswith("*Why these"))
    assert "Not cited:" in why and "ImageNet-Hard" in why
    plan = json.loads(answer.to_json())["plan"]
    assert {s["relevance"] for s in plan["sources"]} >= {"recommended", "relevant"}
    assert all(s["reason"] for s in plan["sources"])
    # The plan's line is text: its only links are the library's own [Paper]/[GitHub] ones.
    tokens = MarkdownIt().parseInline(why)[0].children or []
    assert not [t for t in tokens if t.type == "link_open"]


def sources_for_chain() -> list[Source]:
    return [
        Source(id="mt", role="model", title="MT-M2M100-418M", paper_url="https://a.org/mt"),
        Source(id="ocr", role="model", title="OCR-PPOCRv4", paper_url="https://a.org/ocr"),
        Source(
            id="p",
            role="paper",
            title="Neural Machine Translation by Jointly Learning to Align and Translate",
            paper_url="https://a.org/p",
            summary="Translation.",
        ),
    ]


def test_a_chain_runs_in_the_order_its_data_flows() -> None:
    sources = sources_for_chain()
    plan = make_plan(
        "Translate the text on this photo of a menu",
        sources,
        {"mt": 0.4, "ocr": 0.4, "p": 0.3},
        {"p": 0.5},
        min_score=0.2,
    )
    assert [s.source_id for s in plan.steps] == ["ocr", "mt"]
    first, second = plan.steps
    assert first.task == "optical character recognition" and second.task == "machine translation"
    assert second.input == first.output  # the text the OCR step gives is what MT takes
    assert plan.source("S3").relevance is Relevance.RELEVANT


def test_a_question_task_far_from_the_models_does_not_lead_when_a_close_one_is_named() -> None:
    # A restated Korean question: "colour in" was machine-read as colourisation.
    sources = [
        Source(
            id="seg",
            role="model",
            title="MedSeg-nnUNet-3d-fullres-LiTS",
            paper_url="https://a.org/s",
        ),
        Source(id="sr", role="model", title="SR-RealESRGAN-x4plus", paper_url="https://a.org/r"),
    ]
    restated = (
        "Is there an AI that can automatically colorize the CT images, marking the borders "
        "of the tumors? Doctors outline each medical scan of the liver by hand."
    )
    plan = make_plan(
        "병원 CT 영상", sources[:1], {"seg": 0.4}, None, min_score=0.2, restated=restated
    )
    asked = [t.name for t in plan.tasks if t.origin == "question"]
    assert asked[0] == "medical image segmentation" and "image colorization" in asked
    # What the user did first stays first when it is of the models' family (enlarging
    # beside a deblurring model in the seed; here colourising beside super-resolution).
    plan = make_plan(
        "병원 CT 영상", sources[1:], {"sr": 0.4}, None, min_score=0.2, restated=restated
    )
    asked = [t.name for t in plan.tasks if t.origin == "question"]
    assert asked[0] == "image colorization"


def test_other_data_is_not_relevant_and_says_why() -> None:
    sources = model_and_paper(
        "Deblur-NAFNet", "Robust Speech Recognition via Weak Supervision", "Transcribes speech."
    )
    plan = make_plan(
        "Make my blurry photo sharp", sources, {"m": 0.5, "p": 0.3}, {"p": 0.6}, min_score=0.2
    )
    judged = plan.source("S2")
    assert judged.relevance is Relevance.NOT_RELEVANT
    assert judged.evidence.agreement == "other data" and "audio" in judged.reason
    assert plan.in_prompt == [plan.source("S1")]


@pytest.mark.parametrize(
    ("question", "script", "english", "readable"),
    [
        ("Can AI sharpen my photo?", "Latin", True, True),
        ("¿Puede una IA mejorar mis fotos borrosas?", "Latin", False, True),
        ("오래된 사진을 선명하게 만들 수 있나요?", "Hangul", False, False),
        ("古い写真を鮮明にできますか\uff1f", "Japanese kana", False, False),
        ("这张照片能变清晰吗\uff1f", "Han", False, False),
    ],
)
def test_read_question(question: str, script: str, english: bool, readable: bool) -> None:
    reading = read_question(question)
    assert (reading.script, reading.english, reading.readable) == (script, english, readable)


def test_a_backend_is_held_to_the_plan(seed_bundle: Bundle, settings: Settings) -> None:
    def skips_the_model_and_cites_everything(request: CompletionRequest) -> str:
        plan = request.context.plan
        assert plan is not None
        papers = [s.alias for s in request.context.sources if s.role == "paper"]
        return json.dumps(
            {
                "task": {"statement": "Deblurring.", "source_ids": []},
                "workflow": None,
                "references": [{"source_id": a, "why": "x"} for a in papers],
                "note": "I am not sure.",
                "answerable": False,
            }
        )

    answer = explain(
        bundle=seed_bundle,
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[skips_the_model_and_cites_everything]),
    )
    model = seed_bundle.corpus.sources[0]
    assert answer.answerable and answer.workflow is not None
    assert [s.source_id for s in answer.workflow.steps] == [model.id]
    assert answer.references[0].source_id == model.id
    restored = " ".join(answer.validation.plan)
    assert "declined" in restored and "missing from the references" in restored
    assert answer.plan is not None
    ruled_out = {s.source_id for s in answer.plan.sources if s.relevance is Relevance.NOT_RELEVANT}
    assert not ruled_out & {r.source_id for r in answer.references}


ON_PLANT_HEALTH = (
    "Deep Learning for Plant Health Monitoring from Leaf Images",
    "Finds early signs of stress and infection in photos of leaves.",
)


def name_only_bundle(model: str, github: str) -> Bundle:
    lines = [
        PREAMBLE.format(q="Can this tell me something about my plants?"),
        "### Recommended AI Models:",
        f"Model: {model}",
        "Paper: https://arxiv.org/abs/2301.00001",
        f"GitHub: {github}",
        "",
        "### Related Papers:",
    ]
    for n, (title, summary) in enumerate([*DISTRACTORS[:3], ON_PLANT_HEALTH]):
        lines += [
            f"Model: {title}",
            f"Paper: https://arxiv.org/abs/2001.{n:05d}",
            f"Summary: {summary}",
            "",
        ]
    return parse_bundle("\n".join(lines) + "\nAnswer:\n")


def test_a_task_the_table_never_saw_is_read_from_the_name_prefix(settings: Settings) -> None:
    bundle = name_only_bundle("PlantHealth-FooNet-v2", "https://github.com/example/foonet")
    answer = explain(bundle=bundle, settings=settings, embedder=HashEmbedder())
    assert answer.plan is not None
    model = next(s for s in answer.plan.sources if s.relevance is Relevance.RECOMMENDED)
    assert model.evidence.tasks == [] and model.evidence.name_says == "plant health"
    assert answer.task.statement.startswith("PlantHealth-FooNet-v2 (S1) is named for plant health")
    # The paper whose title says the same words is relevant; the distractors are not.
    cited = [s for s in answer.plan.sources if s.relevance is Relevance.RELEVANT]
    assert [s.title for s in cited] == [ON_PLANT_HEALTH[0]]
    assert cited[0].reason == "names plant health, what PlantHealth-FooNet-v2's name says it is for"


def test_a_product_name_first_is_not_read_as_a_task(settings: Settings) -> None:
    # "HTDemucs" is the product (its repository is .../demucs), not a task prefix.
    bundle = name_only_bundle("HTDemucs-v4-ft", "https://github.com/facebookresearch/demucs")
    answer = explain(bundle=bundle, settings=settings, embedder=HashEmbedder())
    assert answer.plan is not None
    model = next(s for s in answer.plan.sources if s.relevance is Relevance.RECOMMENDED)
    assert model.evidence.name_says == ""
    assert "named for" not in answer.task.statement


def test_a_paper_naming_a_part_of_the_model_name_is_relevant() -> None:
    # Platform names carry the backbone and the training data: a paper that names either
    # is about what the model is made of, even when no task word matches.
    def judged(model: str, title: str, summary: str) -> Any:
        return make_plan(
            "Are these reviews positive?",
            model_and_paper(model, title, summary),
            {"m": 0.5, "p": 0.2},
            {"p": 0.2},
            min_score=0.2,
        ).source("S2")

    roberta = judged(
        "Senti-RoBERTa-wwm-ext-zh",
        "A Robustly Optimized Pretraining Approach",
        "RoBERTa retrains BERT longer on more data.",
    )
    assert roberta.relevance is Relevance.RELEVANT
    assert roberta.reason.startswith("names RoBERTa, which Senti-RoBERTa-wwm-ext-zh's name")
    # Generic acronyms (CNNs, LSTM) name a kind of network, not the model's method.
    generic = judged(
        "Senti-CNN-LSTM-imdb",
        "A Study of Review Pretraining",
        "Compares CNNs and an LSTM on reviews.",
    )
    assert not generic.reason.startswith("names")
    # A name in passing does not make a paper on other data relevant.
    aside = judged(
        "Senti-RoBERTa-wwm-ext-zh",
        "Image Super-Resolution with Deep Networks",
        "Like RoBERTa, it pretrains on a large corpus, of photos.",
    )
    assert aside.relevance is not Relevance.RELEVANT


def test_a_paper_close_to_what_the_question_asks_is_relevant() -> None:
    # The model detects; the question also asks to follow each car: the tracking paper is
    # far from the detector but close to the question.
    sources = [
        Source(id="m", role="model", title="Det-YOLOX-x", paper_url="https://a.org/m"),
        Source(
            id="t",
            role="paper",
            title="Simple Online and Realtime Tracking",
            paper_url="https://a.org/t",
            summary="Associates boxes across frames.",
        ),
        Source(
            id="u",
            role="paper",
            title="A Study of Something Else",
            paper_url="https://a.org/u",
            summary="Unrelated.",
        ),
    ]
    scores = {"m": 0.5, "t": 0.5, "u": 0.44}
    plan = make_plan(
        "Find every car in the video and follow it from frame to frame",
        sources,
        scores,
        {"t": 0.25, "u": 0.25},
        min_score=0.2,
    )
    by_id = {s.source_id: s for s in plan.sources}
    assert by_id["t"].relevance is Relevance.RELEVANT
    assert by_id["t"].reason == "is close to what the question asks about"
    assert by_id["u"].relevance is not Relevance.RELEVANT
    # A question the embedding model cannot read has no such score to trust.
    unread = make_plan(
        "모든 차를 찾아서 따라가 주세요", sources, scores, {"t": 0.25, "u": 0.25}, min_score=0.2
    )
    assert {s.source_id: s for s in unread.sources}["t"].relevance is not Relevance.RELEVANT


def test_an_architecture_paper_on_the_models_data_is_the_mechanism() -> None:
    # The Transformer is cited for a time-series model, ResNet for an OCR model (it reads
    # images); BERT is not cited for a speech model: it reads text, which the model does not.
    def plan_for(model: str, title: str) -> Any:
        sources = model_and_paper(model, title, "A general network architecture.")
        return make_plan(
            "How does it work?", sources, {"m": 0.5, "p": 0.1}, {"p": 0.1}, min_score=0.2
        ).source("S2")

    transformer = plan_for("Forecast-Informer-ETTh1", "Attention Is All You Need")
    assert transformer.relevance is Relevance.RELEVANT
    assert transformer.reason.startswith("introduced the Transformer, an architecture")
    resnet = plan_for("OCR-TrOCR-base", "Deep Residual Learning for Image Recognition")
    assert resnet.relevance is Relevance.RELEVANT and "image models" in resnet.reason
    bert = plan_for(
        "ASR-Whisper-large",
        "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
    )
    assert bert.relevance is not Relevance.RELEVANT
    # A title that only starts like one is another paper.
    other = plan_for("Forecast-Informer-ETTh1", "Attention Is All You Need In Speech Separation")
    assert not other.reason.startswith("introduced")


def test_a_name_that_says_more_than_the_tables_task_is_quoted(settings: Settings) -> None:
    # "ChangeDet" reads as (object) detection in the table; the statement says both.
    bundle = name_only_bundle("ChangeDet-BIT-LEVIRCD", "https://github.com/example/bit")
    answer = explain(bundle=bundle, settings=settings, embedder=HashEmbedder())
    assert answer.plan is not None
    model = next(s for s in answer.plan.sources if s.relevance is Relevance.RECOMMENDED)
    assert model.evidence.tasks == ["object detection"]
    assert model.evidence.name_says == "change detection"
    assert "ChangeDet-BIT-LEVIRCD (S1, named for change detection)" in answer.task.statement
    # A prefix the task already says in full adds nothing.
    plain = explain(
        bundle=name_only_bundle("ASR-Whisper-large", "https://github.com/x/w"),
        settings=settings,
        embedder=HashEmbedder(),
    )
    assert "named for" not in plain.task.statement


def test_a_task_read_only_from_the_papers_is_said_to_be_that() -> None:
    # No task in the model's name: the papers' task is only a reading of its related
    # work, so the statement does not claim the model does it; it names the closest paper.
    from grounded_answer.writing.offline import offline_draft
    from grounded_answer.writing.prompts import PromptContext, PromptSource

    sources = model_and_paper(
        "ZQX-FooNet-v2",
        "Hello Edge: Keyword Spotting for Speech Recognition",
        "Finds wake words on small devices.",
    )
    plan = make_plan(
        "Can it hear its name?", sources, {"m": 0.5, "p": 0.5}, {"p": 0.6}, min_score=0.2
    )
    assert [t.origin for t in plan.tasks] == ["papers"]
    context = PromptContext(
        question="Can it hear its name?",
        passages=[],
        weak_match=False,
        plan=plan,
        sources=[
            PromptSource(
                alias=s.label, source_id=s.source_id, role=s.role.value, title=s.title, summary=""
            )
            for s in plan.sources
        ],
    )
    statement = offline_draft(context).task.statement
    assert statement.startswith(
        "The platform recommends ZQX-FooNet-v2 (S1) for this. Its "
        "related papers are about speech recognition"
    )
    assert statement.endswith(
        "the closest is Hello Edge: Keyword Spotting for Speech Recognition (S2)."
    )
    assert "built for this" not in statement
