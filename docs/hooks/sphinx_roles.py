"""Show the Sphinx roles in the package's docstrings as plain code in the API pages.

The docstrings cross-reference with Sphinx roles (:func:`name`), which Markdown renders
as ":func:" followed by the name in code. Until they are written as mkdocstrings
cross-references, this hook drops the role and keeps the code.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """The page's HTML with every role prefix before a code span removed."""
    return _ROLE.sub("", html)
