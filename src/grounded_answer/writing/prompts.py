"""Rendering the templates in ``templates/`` into chat messages.

Templates are files so they can be read and changed without touching code, and users can
point ``answer.prompts_dir`` at their own. They are rendered in Jinja2's sandbox: a
template may come from a user's config, and source text is data, never code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from jinja2 import TemplateError
from pydantic import BaseModel, ConfigDict

from ..errors import ConfigError
from ..planning import EvidencePlan

__all__ = [
    "TEMPLATES_DIR",
    "ChatMessage",
    "PromptContext",
    "PromptPassage",
    "PromptSource",
    "Prompts",
    "load_prompts",
]

#: The packaged templates, beside this module; ``answer.prompts_dir`` may point elsewhere.
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATES = ("system.j2", "user.j2", "repair.j2")
#: Templates a prompts directory may leave out: the packaged ones are used instead.
OPTIONAL_TEMPLATES = (
    "guided_system.j2",
    "guided_user.j2",
    "restate.j2",
    "translate.j2",
    "translate_again.j2",
    "judge_system.j2",
    "judge_source.j2",
    "judge_coverage.j2",
    "judge_task.j2",
)


class ChatMessage(BaseModel):
    """One chat message, in the OpenAI role/content shape."""

    model_config = ConfigDict(frozen=True)

    role: str
    content: str


class PromptSource(BaseModel):
    """A source as the model sees it: an alias instead of an id, and no links."""

    model_config = ConfigDict(frozen=True)

    alias: str
    source_id: str
    role: str
    title: str
    summary: str
    score: float | None = None


class PromptPassage(BaseModel):
    """A retrieved passage labelled with its source's alias."""

    model_config = ConfigDict(frozen=True)

    alias: str
    score: float
    text: str


class PromptContext(BaseModel):
    """Everything a prompt (or the offline stub) needs to write an answer."""

    model_config = ConfigDict(frozen=True)

    question: str
    sources: list[PromptSource]
    passages: list[PromptPassage]
    weak_match: bool
    plan: EvidencePlan | None = None

    @property
    def aliases(self) -> list[str]:
        """The ids the model may cite, in order."""
        return [s.alias for s in self.sources]


class Prompts:
    """The three templates of one prompts directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or TEMPLATES_DIR
        missing = [name for name in TEMPLATES if not (self.directory / name).is_file()]
        if missing:
            raise ConfigError(f"prompts directory {self.directory} lacks {', '.join(missing)}")
        from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        env = SandboxedEnvironment(
            loader=ChoiceLoader(
                [FileSystemLoader(str(self.directory)), FileSystemLoader(str(TEMPLATES_DIR))]
            ),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self._env = env
        self._templates: dict[str, Any] = {}
        self._uses: dict[str, frozenset[str] | None] = {}
        self._static: dict[str, str] = {}
        if directory is not None:
            # A user's templates are all checked now, so an error names itself at startup;
            # the packaged ones are compiled when first used (a cold stub answer renders
            # two of twelve: 50 ms of a one-second CLI run).
            for name in TEMPLATES + OPTIONAL_TEMPLATES:
                self._compiled(name)

    def _compiled(self, name: str) -> Any:
        if name not in self._templates:
            try:
                self._uses[name] = _variables(self._env, name)
                self._templates[name] = self._env.get_template(name)
            except TemplateError as exc:
                raise ConfigError(f"prompt template error in {self.directory}: {exc}") from None
        return self._templates[name]

    def messages(self, context: PromptContext) -> list[ChatMessage]:
        """System and user messages for a first attempt; an answer must never repeat the first."""
        return [
            ChatMessage(role="system", content=self._render("system.j2", context)),
            ChatMessage(role="user", content=self._render("user.j2", context)),
        ]

    def guided(
        self, context: PromptContext, draft: dict[str, Any], language: str
    ) -> list[ChatMessage]:
        """System and user messages asking a model to rewrite the offline draft's slots."""
        return [
            ChatMessage(role="system", content=self._render("guided_system.j2", context)),
            ChatMessage(
                role="user",
                content=self._render("guided_user.j2", context, draft=draft, language=language),
            ),
        ]

    def restate(self, question: str) -> list[ChatMessage]:
        """The one message that asks for the question in English (for retrieval)."""
        context = PromptContext(question=question, sources=[], passages=[], weak_match=False)
        return [ChatMessage(role="user", content=self._render("restate.j2", context))]

    def translate(self, lines: list[str], language: str, again: bool = False) -> list[ChatMessage]:
        """The message that asks for tagged lines in another language.

        ``again``: the first reply came back wholly in another language (the 1.5B model
        copies a Korean request back in English at times); the same request is sent under
        a system message that makes the model a translator into ``language``, which on
        such a request gave Korean where a follow-up message did not.
        """
        context = PromptContext(question="", sources=[], passages=[], weak_match=False)
        request = ChatMessage(
            role="user",
            content=self._render("translate.j2", context, lines=lines, language=language),
        )
        if not again:
            return [request]
        system = self._render("translate_again.j2", context, language=language)
        return [ChatMessage(role="system", content=system), request]

    def judge(
        self,
        question: str,
        models: list[dict[str, str]],
        source: dict[str, str] | Literal["task"] | None,
    ) -> list[ChatMessage]:
        """Messages asking a model to judge one source, or (None) coverage, or name the task.

        Every judgement of a question shares the system message (the question and what the
        recommended models do), so a server with a prompt cache reads it once and pays
        only for each source's own tokens. The models are described by task and summary,
        not by name: a name that shares a word with the question ("Sharpen-") says nothing
        about whether the question is covered.
        """
        context = PromptContext(question=question, sources=[], passages=[], weak_match=False)
        if source is None:
            user = self._render("judge_coverage.j2", context)
        elif source == "task":
            user = self._render("judge_task.j2", context)
        else:
            user = self._render("judge_source.j2", context, **source)
        return [
            ChatMessage(
                role="system", content=self._render("judge_system.j2", context, models=models)
            ),
            ChatMessage(role="user", content=user),
        ]

    def repair(self, context: PromptContext, errors: list[str]) -> ChatMessage:
        """The follow-up message that hands the model its exact errors."""
        return ChatMessage(role="user", content=self._render("repair.j2", context, errors=errors))

    def _render(self, name: str, context: PromptContext, **extra: object) -> str:
        # Rendering runs on every question: only the variables a template reads are
        # built, and a template that reads none (the default system prompt) is rendered once.
        template = self._compiled(name)
        uses = self._uses[name]
        if uses is not None and not uses and name in self._static:
            return self._static[name]
        values: dict[str, Any] = {
            "question": lambda: context.question,
            "sources": lambda: [s.model_dump() for s in context.sources],
            "passages": lambda: [p.model_dump() for p in context.passages],
            "weak_match": lambda: context.weak_match,
            "aliases": lambda: context.aliases,
            "plan": lambda: _plan_values(context.plan),
        }
        variables = {key: make() for key, make in values.items() if uses is None or key in uses}
        try:
            text: str = template.render(**variables, **extra).strip()
        except TemplateError as exc:
            raise ConfigError(f"prompt template {self.directory / name}: {exc}") from None
        if uses is not None and not uses:
            self._static[name] = text
        return text


def _plan_values(plan: EvidencePlan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    values = plan.model_dump(mode="json")
    values["in_prompt"] = [s.model_dump(mode="json") for s in plan.in_prompt]
    return values


def _variables(env: Any, name: str) -> frozenset[str] | None:
    """The context variables template ``name`` reads; None if it includes other templates."""
    from jinja2 import meta

    source = env.loader.get_source(env, name)[0]
    tree = env.parse(source)
    if any(True for _ in meta.find_referenced_templates(tree)):
        return None
    return frozenset(meta.find_undeclared_variables(tree))


@lru_cache(maxsize=8)
def load_prompts(directory: Path | None) -> Prompts:
    """Prompts for a directory, parsed once per process."""
    return Prompts(directory)
