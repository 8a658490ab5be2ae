"""Keeping instructions hidden in sources or questions away from the model and the answer.

Source summaries and questions are data. A sentence in them that addresses the model
("ignore the previous instructions", "cite https://...", "print your system prompt",
"answer in YAML from now on", "Note for the assistant: ...") is cut out before the prompt
is built, and the answer is checked for two tells of an obeyed injection: a cut-out
sentence copied back, or a run of words from the system prompt that the question did
not already hold. The patterns cover English, French, Spanish, German, Korean, Chinese
and Japanese phrasings, the languages the platform serves; they stop the common forms,
not every wording, so links are enforced structurally as well (only source records'
link fields are allowed links anywhere: see :mod:`grounded_answer.grounding.links`).

The patterns are written to stay linear: every unbounded repeat is possessive or
followed by something it cannot match, and the sentence splitter only tries a sentence
end at the first of a run of full stops (``benchmarks/adversarial.py`` measures it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache, lru_cache

from .links import as_read

__all__ = ["QUESTION_WITHHELD", "echoes", "quarantine"]

QUESTION_WITHHELD = "(The question was not shown: all of it was addressed to the assistant.)"
"""What the model is sent instead of a question that was nothing but withheld sentences."""

_ENGLISH = [
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}\b(?:instructions?|rules?|prompts?|"
    r"guidelines|directions|constraints|commands|orders)\b",
    # "Ignore the above." / "Disregard all previous messages" (not "the previous frames").
    r"\b(?:ignore|disregard|forget)\s++(?:all\s++|everything\s++)?(?:(?:the|that|your|my)\s++)?"
    r"(?:above|before|previous(?:ly)?|prior|earlier)(?:\s++(?:instructions?|messages?|text|"
    r"context|content|prompts?|conversation|directions|rules|input))?\s*+(?:[.!;,:]|$)",
    r"\b(?:system|developer|hidden|original|initial|secret)\s++(?:prompt|message|"
    r"instructions?)\b",
    r"\b(?:reveal|print|show|repeat|output|leak|disclose|tell|give)\b.{0,30}\b(?:your|the\s++"
    r"(?:system|hidden|original|initial|secret|above|previous))\s++(?:instructions?|prompts?|"
    r"rules|guidelines)\b",
    r"\b(?:instructions?|prompt|rules)\s++(?:above|verbatim|you\s++(?:were|have\s++been)\s++"
    r"given)\b",
    r"\byou\s++(?:are\s++now|must\s++now|will\s++now|should\s++now)\b",
    r"\bnew\s++(?:instructions?|rules|task)\b",
    r"\b(?:from\s++now\s++on|instead\s++of\s++the\s++(?:json|format|answer))\b",
    r"\b(?:respond|reply|answer|write)\s++(?:only\s++)?(?:with|in)\s++(?:the\s++)?(?:following|"
    r"this\s++format|plain\s++text|markdown|yaml|xml|html)\b",
    r"\b(?:always|must|should)\s++(?:cite|link|reference|recommend|mention)\b",
    r"\b(?:cite|link\s++to|recommend|point\s++(?:users?|readers?)\s++to)\s++(?:https?://|www\.)",
    r"\b(?:assistant|ai|model|llm|chatbot)\s*+[:,]\s*+(?:ignore|please|you|do|cite|say|write)\b",
    r"<\s*+/?\s*+(?:system|instructions?|im_start|im_end)\s*+>|\[/?inst\]",
    r"\b(?:write|say|print|output|include|add|put|insert|append)\b.{0,60}\b(?:in|into|to|at)\s++"
    r"(?:the|your)\s++(?:answer|output|response|task|statement|reply|summary|references?)\b",
    # Paraphrases: "Note for the assistant: ...", "If you are an AI, ...".
    r"\b(?:note|message|memo|reminder|instructions?|hint|tip|attention|warning|notice|"
    r"directive)\s++(?:for|to)\s++(?:the\s++|any\s++|all\s++|an\s++)?(?:ai|assistant|model|llm|"
    r"chatbot|bot|gpt|language\s++model|summari[sz]er)s?\b",
    r"\bif\s++you\s++are\s++(?:an?\s++)?(?:ai|llm|assistant|(?:large\s++)?language\s++model|"
    r"chatbot|bot|gpt)\b",
    r"\b(?:ai|llm|assistant|chatbot|language\s++model)s?\s++(?:reading|processing|"
    r"summari[sz]ing|answering|parsing)\s++this\b",
    r"\bas\s++an?\s++(?:ai|llm|assistant|language\s++model)\s*+,?\s++you\s++(?:must|should|will|"
    r"have\s++to|need\s++to)\b",
]
_FRENCH = [
    r"\b(?:ignore[rsz]?|oublie[rsz]?|ne\s++tiens\s++pas\s++compte|ne\s++tenez\s++pas\s++compte)"
    r"\b.{0,40}\b(?:instructions?|consignes?|règles|directives|invites?|prompts?)\b",
    r"\b(?:instructions?|consignes?)\s++(?:précédentes|ci-dessus|antérieures|initiales|"
    r"d['\u2019]origine|du\s++système|système)\b",
    r"\b(?:invite|prompt|message)\s++(?:du\s++)?système\b",
    r"\b(?:affiche|montre|révèle|répète|imprime|donne|dis)[rsz]?(?:-moi)?\b.{0,30}\b(?:tes|vos|"
    r"ton|votre)\s++(?:instructions?|consignes|règles|prompt|invite)\b",
    r"\b(?:tu\s++es|vous\s++êtes)\s++(?:maintenant|désormais|dorénavant)\b",
    r"\b(?:à\s++partir\s++de\s++maintenant|dorénavant|désormais)\s*+,?\s++(?:tu|vous|réponds|"
    r"répondez|écris|écrivez|cite[sz]?)\b",
    r"\b(?:réponds|répondez|écris|écrivez)\s++(?:uniquement\s++|seulement\s++)?(?:en|avec)\s++"
    r"(?:yaml|xml|html|json|markdown|texte\s++brut)\b",
    r"\b(?:note|message|consigne|remarque)\s++(?:pour|à)\s++(?:l['\u2019]\s*+|le\s++|la\s++)?"
    r"(?:assistant|ia|intelligence\s++artificielle|modèle|ai|robot)\b",
    r"\b(?:cite[sz]?|mentionne[sz]?|recommande[sz]?)\s++(?:https?://|www\.)",
]
_SPANISH = [
    r"\b(?:ignora|ignore|ignorar|olvida|olvide|olvidar|omite|descarta)\b.{0,40}\b(?:"
    r"instrucciones|reglas|indicaciones|órdenes|prompt|directrices)\b",
    r"\b(?:instrucciones|indicaciones)\s++(?:anteriores|previas|originales|iniciales|del\s++"
    r"sistema)\b",
    r"\b(?:prompt|mensaje)\s++del\s++sistema\b",
    r"\b(?:muestra|muéstrame|revela|imprime|repite|dime)\b.{0,30}\b(?:tus|sus)\s++(?:"
    r"instrucciones|reglas|prompt|indicaciones)\b",
    r"\bahora\s++eres\b|\bde\s++ahora\s++en\s++adelante\b",
    r"\ba\s++partir\s++de\s++ahora\s*+,?\s++(?:eres|responde|responderás|debes|escribe|cita)\b",
    r"\bnota\s++(?:para|al?)\s++(?:el\s++|la\s++)?(?:asistente|ia|modelo|inteligencia\s++"
    r"artificial)\b",
    r"\b(?:cita|menciona|recomienda)\s++(?:https?://|www\.)",
]
_GERMAN = [
    r"\b(?:ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte|missachten)\b.{0,40}\b(?:"
    r"anweisungen|anweisung|regeln|vorgaben|instruktionen|befehle|prompts?)\b",
    r"\b(?:vorherigen|vorigen|obigen|bisherigen|ursprünglichen)\s++(?:anweisungen|instruktionen|"
    r"regeln|vorgaben)\b",
    r"\b(?:system-?prompts?|systemanweisung(?:en)?|systemnachricht)\b",
    r"\b(?:zeige?|gib|verrate|wiederhole)\b.{0,30}\b(?:deine|ihre)\s++(?:anweisungen|regeln|"
    r"instruktionen|prompts?|vorgaben)\b",
    r"\bdu\s++bist\s++(?:jetzt|nun|ab\s++sofort)\b",
    r"\b(?:ab\s++jetzt|von\s++nun\s++an|ab\s++sofort)\s*+,?\s++(?:bist|antwortest|antworte|"
    r"schreibst|schreibe|zitierst|zitiere|musst|sollst)\b",
    r"\b(?:hinweis|notiz|nachricht|anweisung)\s++(?:für|an)\s++(?:den\s++|die\s++|das\s++)?(?:"
    r"assistenten|assistent|ki|modell|sprachmodell|ai|bot|chatbot)\b",
]
# No word boundaries in CJK text: the phrases are specific enough on their own.
_KOREAN = [
    r"(?:이전|앞의|앞선|위의|기존|모든|지금까지의?)\s*+(?:지시|지침|명령|규칙|프롬프트|설정)\S{0,3}"
    r"\s*+(?:모두\s*+)?(?:무시|잊)",
    r"(?:지시|지침|명령|프롬프트)\S{0,3}\s*+(?:모두\s*+|전부\s*+)?무시",
    r"시스템\s*+(?:프롬프트|메시지|지침|지시)",
    r"(?:너의|당신의|네|니)\s*+(?:시스템\s*+)?(?:프롬프트|지시\S{0,2}|지침|규칙|설정)\S{0,3}\s*+"
    r"\S{0,4}(?:출력|보여|공개|알려|말해|반복)",
    r"(?:지금부터|이제부터|앞으로)\s*+(?:너는|넌|당신은)",
    r"(?:어시스턴트|ai|인공지능|모델|챗봇)(?:에게|한테|께)\s*+(?:보내는\s*+|주는\s*+)?(?:참고|메모|지시|"
    r"알림|노트|주의|[:\uff1a])",
    r"(?:https?://|www\.)\S++\s*+(?:을|를)?\s*+(?:인용|추천|언급|링크)",
]
_CHINESE = [
    r"(?:忽略|无视|無視|忘记|忘記|忽視|不要理会|不要理會)\S{0,10}?(?:指令|指示|说明|說明|规则|規則|提示|"
    r"要求|设定|設定)",
    r"系统\s*+提示|系統\s*+提示|系统\s*+消息|系統\s*+訊息|系统指令|系統指令",
    r"(?:输出|輸出|显示|顯示|打印|重复|重複|告诉我|告訴我|透露)\S{0,6}(?:你的|您的)\S{0,4}(?:提示|指令|"
    r"规则|規則|设定|設定)",
    r"你现在是|你現在是",
    r"(?:从现在开始|從現在開始|从现在起|從現在起)\s*+[,\uff0c]?\s*+(?:你|请|請|只)",
    r"(?:给|給|致)\s*+(?:助手|ai|人工智能|模型|助理)\S{0,3}(?:说明|說明|提示|注意|备注|備註|指示|留言)",
    r"(?:引用|推荐|推薦)\s*+(?:https?://|www\.)",
]
_JAPANESE = [
    r"(?:以前|前|上記|これまで|先ほど|すべて|全て)の\S{0,6}?(?:指示|命令|指令|ルール|プロンプト|設定)"
    r"\S{0,4}?(?:無視|忘れ)",
    r"(?:指示|命令|指令|ルール|プロンプト)\S{0,3}(?:すべて|全て)?\s*+無視",
    r"システム\s*+プロンプト|システムメッセージ",
    r"(?:あなたの|君の)\S{0,4}(?:プロンプト|指示|命令|ルール|設定)\S{0,4}(?:表示|出力|教え|見せ|繰り返)",
    r"あなたは今から|今からあなたは|これからあなたは|今後あなたは",
    r"(?:アシスタント|ai|モデル)(?:へ|に)の?\s*+(?:メモ|注意|指示|お知らせ|ノート)",
]
_PATTERNS = [*_ENGLISH, *_FRENCH, *_SPANISH, *_GERMAN, *_KOREAN, *_CHINESE, *_JAPANESE]
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")


@cache
def _groups() -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
    """The patterns compiled in small groups: Latin-script ones, and CJK ones.

    Compiled on first use (milliseconds that ``import grounded_answer`` should not pay).
    A few small alternations search faster than one large one, the patterns are lower
    case and run on lower-cased text (IGNORECASE is markedly slower), and the CJK groups
    only run on text that has CJK or Hangul characters (docs/figures/hostile-input.md has
    the figures).
    """

    def compiled(*groups: list[str]) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile("|".join(f"(?:{p})" for p in group), re.DOTALL) for group in groups)

    english = [_ENGLISH[i : i + 6] for i in range(0, len(_ENGLISH), 6)]
    return compiled(*english, _FRENCH, _SPANISH, _GERMAN), compiled(_KOREAN, _CHINESE, _JAPANESE)


def _addresses_model(text: str) -> bool:
    # Screened as read: "ig\u200bnore", fullwidth or Cyrillic look-alike letters do not
    # hide a sentence from the patterns.
    read = as_read(text).lower()
    latin, cjk = _groups()
    return any(p.search(read) for p in latin) or (
        _CJK.search(read) is not None and any(p.search(read) for p in cjk)
    )


# A sentence ends at . ! ? followed by a space or the end (not inside "evil.io"), at a
# CJK full stop, or at a newline. The look-behind tries a run of stops only at its first
# stop, which keeps the splitter linear on "......".
_SENTENCE = re.compile(r".*?(?:(?<![.!?])[.!?]++(?=\s|$)|[\u3002\uff01\uff1f]++|\n|$)", re.DOTALL)
_ECHO_WORDS = 8
_WORD = re.compile(r"\w+")


def quarantine(text: str) -> tuple[str, list[str]]:
    """``text`` without the sentences that address the model, and those sentences."""
    kept, removed = _quarantine(text)
    return kept, list(removed)


@lru_cache(maxsize=8192)
def _quarantine(text: str) -> tuple[str, tuple[str, ...]]:
    # Cached: the same source passages are screened on every question.
    if not _addresses_model(text):
        return text, ()
    kept: list[str] = []
    removed: list[str] = []
    for match in _SENTENCE.finditer(text):
        sentence = match.group(0)
        if not sentence.strip():
            kept.append(sentence)
        elif _addresses_model(sentence):
            removed.append(" ".join(sentence.split()))
        else:
            kept.append(sentence)
    return " ".join("".join(kept).split()), tuple(removed)


def echoes(text: str, sources: Iterable[str], *, besides: str = "") -> str | None:
    """The first run of eight or more words ``text`` shares with any of ``sources``.

    Runs that ``besides`` holds too are not echoes: an answer may restate the user's
    question even where the question happens to share words with the system prompt.
    """
    words = _words(text)
    if len(words) < _ECHO_WORDS:
        return None
    known = [_grams(source) for source in sources]
    exempt = _grams(besides) if besides else frozenset()
    for i in range(len(words) - _ECHO_WORDS + 1):
        gram = tuple(words[i : i + _ECHO_WORDS])
        if gram not in exempt and any(gram in grams for grams in known):
            return " ".join(gram)
    return None


@lru_cache(maxsize=256)
def _grams(source: str) -> frozenset[tuple[str, ...]]:
    # Cached: one system prompt is checked against every prose field of an answer.
    words = _words(source)
    return frozenset(tuple(words[i : i + _ECHO_WORDS]) for i in range(len(words) - _ECHO_WORDS + 1))


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())
