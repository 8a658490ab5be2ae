from __future__ import annotations

from pathlib import Path

import pytest

from grounded_answer.errors import ConfigError
from grounded_answer.writing.prompts import PromptContext, PromptPassage, Prompts, PromptSource


def context(question: str, title: str) -> PromptContext:
    return PromptContext(
        question=question,
        sources=[
            PromptSource(
                alias="S1",
                source_id="s1",
                role="model",
                title=title,
                summary="Removes blur.",
                score=0.5,
            )
        ],
        passages=[PromptPassage(alias="S1", score=0.5, text=f"{title}: removes blur.")],
        weak_match=False,
    )


def write(directory: Path, **templates: str) -> Path:
    defaults = {
        "system.j2": "Rules.",
        "user.j2": "{{ question }}",
        "repair.j2": "{% for e in errors %}{{ e }}{% endfor %}",
    }
    for name, text in {**defaults, **templates}.items():
        (directory / name.replace("_", ".")).write_text(text)
    return directory


def test_default_templates_render_each_context() -> None:
    prompts = Prompts()
    one = prompts.messages(context("How do I sharpen a photo?", "Deblur-MSSNet"))
    two = prompts.messages(context("How do I transcribe a meeting?", "ASR-Whisper"))
    assert one[0].content == two[0].content  # the default system prompt reads no variable
    assert "sharpen" in one[1].content and "Deblur-MSSNet" in one[1].content
    assert "transcribe" in two[1].content and "ASR-Whisper" in two[1].content
    repair = prompts.repair(context("q", "t"), ["task.statement: too long"])
    assert "task.statement: too long" in repair.content


def test_a_system_prompt_that_reads_the_context_is_never_reused(tmp_path: Path) -> None:
    system = "Explain {{ sources[0].title }} for: {{ question }}"
    prompts = Prompts(write(tmp_path, system_j2=system))
    first = prompts.messages(context("first question", "Model-A"))[0].content
    second = prompts.messages(context("second question", "Model-B"))[0].content
    assert first == "Explain Model-A for: first question"
    assert second == "Explain Model-B for: second question"


def test_included_templates_get_every_variable(tmp_path: Path) -> None:
    (tmp_path / "part.j2").write_text("{{ passages[0].text }} / {{ weak_match }}")
    prompts = Prompts(write(tmp_path, system_j2='Use: {% include "part.j2" %}'))
    assert prompts.messages(context("q", "Model-A"))[0].content == (
        "Use: Model-A: removes blur. / False"
    )
    assert prompts.messages(context("q", "Model-B"))[0].content == (
        "Use: Model-B: removes blur. / False"
    )


def test_template_errors_are_config_errors(tmp_path: Path) -> None:
    (write(tmp_path) / "repair.j2").unlink()
    with pytest.raises(ConfigError, match=r"lacks repair\.j2"):
        Prompts(tmp_path)
    with pytest.raises(ConfigError, match="template error"):
        Prompts(write(tmp_path, system_j2="{% if %}"))
    broken = Prompts(write(tmp_path, system_j2="{{ no_such_variable }}"))
    with pytest.raises(ConfigError, match=r"system\.j2"):
        broken.messages(context("q", "t"))


def test_a_broken_optional_template_of_a_users_directory_fails_at_load(tmp_path: Path) -> None:
    # Checked at once, not at the first non-English question that needs it.
    directory = write(tmp_path)
    (directory / "translate.j2").write_text("{% for %}")
    with pytest.raises(ConfigError, match="template error"):
        Prompts(directory)


def test_the_packaged_templates_are_compiled_when_first_used() -> None:
    # A cold stub answer renders a few of them; compiling all twelve cost 50 ms per process.
    prompts = Prompts()
    assert prompts.restate("Qu'est-ce que c'est ?")[0].content
    assert set(prompts._templates) == {"restate.j2"}
