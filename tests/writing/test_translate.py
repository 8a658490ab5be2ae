"""Translation lines and the reply read back, one failure at a time (no server needed)."""

from __future__ import annotations

import pytest

from grounded_answer.writing.translate import (
    ARROW,
    Line,
    _check,
    apply_translation,
    translation_lines,
)

from ..support.drafting import Drafting, drafting
from ..support.paths import BUNDLES
from ..support.translator import translated

PIPELINE = BUNDLES / "d06_voice_messages_pt_to_korean.txt"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Drafting:
    return drafting(PIPELINE, tmp_path_factory.mktemp("cache"))


def reply_to(lines: list[Line]) -> list[str]:
    return [f"[{line.tag}] {translated(line.text)}" for line in lines]


def test_lines_have_distinct_opaque_tags_the_same_every_time(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    again = translation_lines(made.baseline, made.plan, "ko")
    assert [line.tag for line in lines] == [line.tag for line in again]
    assert len({line.tag for line in lines}) == len(lines)
    # Not a numbering: a model cannot guess the next tag from the last.
    assert [line.tag for line in lines] != sorted(line.tag for line in lines)


def test_every_line_holds_an_anchor_and_a_step_travels_as_input_arrow_output(
    made: Drafting,
) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    io = [line for line in lines if line.slot.endswith(".io")]
    assert io and all(line.text.count(ARROW) == 1 for line in io)
    assert all(line.aliases for line in lines if line.slot != "note")
    why = [line for line in lines if line.slot.startswith("why")]
    assert all(line.text.startswith(f"({line.anchor}) ") for line in why if line.anchor)


def test_why_a_recommended_model_is_cited_is_written_natively_not_sent(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    english = translation_lines(made.baseline, made.plan, "en")
    assert len(english) > len(lines)
    draft, report = apply_translation(
        made.baseline, "\n".join(reply_to(lines)), lines, made.grounding, "ko", made.plan
    )
    assert report.native == ["why[0]", "why[1]"]
    assert draft.references[0].why.startswith("음성 인식") and "1단계" in draft.references[0].why


def test_a_faithful_reply_fills_every_slot(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    draft, report = apply_translation(
        made.baseline, "\n".join(reply_to(lines)), lines, made.grounding, "ko", made.plan
    )
    assert report.kept == [] and report.misaligned == 0
    assert sorted(report.translated) == sorted(line.slot for line in lines)
    assert draft.workflow is not None
    # The chain holds: what step 1 gives is what step 2 takes, one translation of it.
    assert draft.workflow.steps[1].input == draft.workflow.steps[0].output


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("missing", "missing from the reply"),
        ("duplicated", "duplicated in the reply"),
        ("merged", "merged with another line"),
        ("moved", "out of place in the reply"),
        ("swapped", "another line's text"),
        ("lost name", "which it must keep"),
        ("no arrow", "lost the →"),
        ("wrong script", "not in the answer's language"),
    ],
)
def test_a_line_that_cannot_be_proven_stays_english_and_says_why(
    made: Drafting, name: str, why: str
) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    victim = next(n for n, line in enumerate(lines) if line.slot == "steps[0].action")
    io = next(n for n, line in enumerate(lines) if line.slot == "steps[0].io")
    tag = lines[victim].tag
    if name == "missing":
        del reply[victim]
    elif name == "duplicated":
        reply.insert(victim, reply[victim])
    elif name == "merged":
        reply[victim] += " " + reply.pop(victim + 1)
    elif name == "moved":
        reply.append(reply.pop(victim))
    elif name == "swapped":
        other = len(reply) - 1
        reply[victim], reply[other] = (
            f"[{tag}] {reply[other].split('] ', 1)[1]}",
            f"[{lines[other].tag}] {reply[victim].split('] ', 1)[1]}",
        )
    elif name == "lost name":
        reply[victim] = reply[victim].replace("Whisper", "위스퍼")
    elif name == "no arrow":
        victim = io
        reply[io] = reply[io].replace(ARROW, ",")
    elif name == "wrong script":
        reply[victim] = f"[{tag}] {lines[victim].text}"
    draft, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    slot = lines[victim].slot
    kept = [entry for entry in report.kept if entry.startswith(f"{slot}:")]
    assert kept and why in kept[0], report.kept
    english = made.baseline.workflow.steps[0] if made.baseline.workflow else None
    assert english is not None and draft.workflow is not None
    if slot.endswith(".action"):
        assert draft.workflow.steps[0].action == english.action
    else:
        assert draft.workflow.steps[0].input == english.input


def test_an_empty_reply_leaves_the_draft_in_english_and_reports_every_line(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    draft, report = apply_translation(made.baseline, "", lines, made.grounding, "ko", made.plan)
    assert draft.task == made.baseline.task
    assert len(report.kept) == len(lines) and report.misaligned == 0
    assert all(entry.endswith("missing from the reply") for entry in report.kept)


def test_a_tag_the_model_made_up_belongs_to_no_slot(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = [f"[Z9] {translated(lines[0].text)}", *reply_to(lines)[1:]]
    if lines[0].tag == "Z9":
        pytest.skip("the made-up tag is a real one here")
    draft, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    assert report.kept[0].startswith("task: missing")
    assert draft.task.statement == made.baseline.task.statement


def test_a_wrapped_line_is_read_whole(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    task = reply[0]
    cut = task.index(" ", len(task) // 2)
    reply[0:1] = [task[:cut], task[cut + 1 :]]
    _, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    assert "task" in report.translated


def test_a_source_id_in_parentheses_is_never_read_as_a_tag(made: Drafting) -> None:
    # Tags never start with S: a line's "(S2)" anchor is not another line's tag.
    from grounded_answer.writing.translate import _tags

    assert not any(tag.startswith("S") for seed in range(50) for tag in _tags(60, str(seed)))
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    _, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    assert not [entry for entry in report.kept if "merged" in entry]


def test_the_prompt_shows_no_example_tag_a_model_could_copy() -> None:
    # Asked with "such as [K7]", the 1.5B model tagged its first line [K7].
    from grounded_answer.writing.prompts import load_prompts

    text = load_prompts(None).translate(["[B4] a line"], "Korean")[0].content
    assert "[K7]" not in text and "[B4] a line" in text


def test_a_line_too_long_for_its_slot_keeps_its_whole_sentences_that_fit(made: Drafting) -> None:
    from grounded_answer.grounding.draft import WHY_CHARS

    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    n, why = next((n, line) for n, line in enumerate(lines) if line.slot.startswith("why"))
    first = translated(why.text)
    # The translation runs past the slot: one more sentence than the slot can hold.
    reply[n] = f"[{why.tag}] {first} " + "단어 단어 단어 단어." * (WHY_CHARS // 10)
    draft, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    assert why.slot in report.translated
    slot = draft.references[int(why.slot[4:-1])].why
    assert len(slot) <= WHY_CHARS
    assert slot.startswith(first.removeprefix(f"({why.anchor}) ").split(". ")[0])
    assert not slot.endswith("…")  # cut between sentences, never inside one


def test_a_line_kept_in_english_says_which_check_it_failed(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    n, why = next((n, line) for n, line in enumerate(lines) if line.slot.startswith("why"))
    reply[n] = f"[{why.tag}] {translated(why.text)} https://evil.example.com/x"
    draft, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    kept = next(entry for entry in report.kept if entry.startswith(why.slot))
    assert "link" in kept and "evil.example.com/x" not in kept  # named, and defanged
    assert "evil" not in draft.model_dump_json()


def test_a_kept_name_may_change_case(made: Drafting) -> None:
    lines = translation_lines(made.baseline, made.plan, "ko")
    reply = reply_to(lines)
    n, line = next((n, x) for n, x in enumerate(lines) if any(k != k.upper() for k in x.kept))
    name = next(k for k in line.kept if k != k.upper())
    reply[n] = reply[n].replace(name, name.upper())
    _, report = apply_translation(
        made.baseline, "\n".join(reply), lines, made.grounding, "ko", made.plan
    )
    assert line.slot in report.translated


@pytest.mark.parametrize(
    ("name", "written", "kept"),
    [
        ("CNNs", "CNN 모델", True),
        ("BERT-style", "estilo BERT", True),
        ("0.25-degree", "0,25 grados", True),
        ("3D", "3d", True),
        ("Deblur-MSSNet-GoPro", "MSSNet-GoPro", False),  # a model's name is kept whole
        ("MSSNet", "MSS 네트워크", False),
        ("CNNs", "합성곱 신경망", False),
    ],
)
def test_a_kept_name_may_lose_its_english_grammar_not_its_identity(
    name: str, written: str, kept: bool
) -> None:
    line = Line(slot="why[1]", tag="K1", text=f"It uses {name}.", aliases=frozenset(), kept=(name,))
    text, why = _check(line, f"이것은 {written}을 사용합니다.", "ko")
    assert (text is not None) is kept, why
