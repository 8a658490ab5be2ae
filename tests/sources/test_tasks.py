"""The task table: what a terse platform name or a title says about its task."""

from __future__ import annotations

import pytest

from grounded_answer.sources.tasks import expand_name, tasks_in_order


@pytest.mark.parametrize(
    ("name", "task"),
    [
        ("SR-RealESRGAN-x4plus", "image super-resolution"),  # a task prefix, spelled out
        ("ImageTo3D-TripoSR", "3D reconstruction"),  # "3D" stays one word ...
        ("SpeechEnhance-DeepFilterNet", "speech enhancement"),  # a stem, not the full noun
        ("MusicSep-HTDemucs-4stems", "audio source separation"),  # "Sep" inside CamelCase
        ("Forecast-Chronos-T5-small", "time-series forecasting"),
        ("Embed-SBERT-all-MiniLM-L6-v2", "semantic search"),
    ],
)
def test_a_platform_name_says_its_task(name: str, task: str) -> None:
    assert [hint.name for hint in tasks_in_order(expand_name(name))][:1] == [task]


def test_two_capitals_inside_a_product_name_are_not_a_task() -> None:
    # ... and "SR" inside "TripoSR" is the product's name, not super-resolution.
    assert "super-resolution" not in expand_name("TripoSR").lower()
    assert tasks_in_order(expand_name("Photo-TripoSR")) == ()


@pytest.mark.parametrize(
    ("title", "task"),
    [
        (
            "DeepAR: Probabilistic Forecasting with Autoregressive Recurrent Networks",
            "time-series forecasting",
        ),
        ("Dense Passage Retrieval for Open-Domain Question Answering", "semantic search"),
        (
            "InceptionTime: Finding AlexNet for Time Series Classification",
            "time-series classification",
        ),
        (
            "Silero VAD: pre-trained enterprise-grade Voice Activity Detector",
            "voice activity detection",
        ),
    ],
)
def test_tasks_of_the_public_taxonomy_are_known(title: str, task: str) -> None:
    assert tasks_in_order(title)[0].name == task


@pytest.mark.parametrize(
    "title",
    [
        "Denoising Diffusion Probabilistic Models",
        "BART: Denoising Sequence-to-Sequence Pre-training for Natural Language Generation",
    ],
)
def test_a_denoising_objective_is_not_image_denoising(title: str) -> None:
    assert "image denoising" not in [hint.name for hint in tasks_in_order(title)]


def test_note_transcription_is_music_and_time_series_anomalies_are_not_images() -> None:
    # "Polyphonic Note Transcription" writes down notes; "transcri" alone is speech.
    title = "A Lightweight Model for Polyphonic Note Transcription and Multipitch Estimation"
    assert tasks_in_order(title)[0].name == "music transcription"
    for speech in ("Meeting notes transcribed with Whisper", "A footnote transcription tool"):
        assert tasks_in_order(speech)[0].name == "speech recognition", speech
    found = tasks_in_order("Deep anomaly detection in multivariate time series")
    assert found[0].name == "time-series anomaly detection"
    assert "image" not in found[0].input
    assert (
        tasks_in_order("PatchCore finds defects in product photos")[0].name == "anomaly detection"
    )
