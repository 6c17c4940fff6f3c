"""Sphinx configuration of the documentation site (``make docs``).

Pages are the Markdown files in this folder (MyST). ``index.md`` lists the main ones first, then a glob
picks up every other page, so a new ``docs/*.md`` page needs no change here. ``make docs`` builds with
warnings as errors (``-W -n``): a broken link to a page or a heading fails the build.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pygments.lexer import RegexLexer
from pygments.token import Comment, Keyword, Name, Number, Punctuation, String, Text, Whitespace

from airflow_ppf import __version__

project = "airflow-ppf"
author = "airflow-ppf contributors"
copyright = "airflow-ppf contributors"  # the name Sphinx reads
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# `[text](page.md#a-heading)` links resolve to headings down to level 3 (and fail the build if missing).
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
nitpicky = True

html_theme = "furo"
html_title = f"airflow-ppf {version}"


class HoconLexer(RegexLexer):
    """Pipeline configs (```` ```hocon ```` blocks): Pygments has no HOCON lexer of its own."""

    name = "HOCON"
    aliases: ClassVar[list[str]] = ["hocon"]
    tokens: ClassVar[dict[str, Any]] = {
        "root": [
            (r"(#|//).*?$", Comment.Single),
            (r'"""[\s\S]*?"""', String),
            (r'"(\\\\.|[^"\\\\])*"', String.Double),
            (r"\$\{\??[^}]*\}", Name.Variable),
            (r"[{}\[\],:=]", Punctuation),
            (r"\b(true|false|null)\b", Keyword.Constant),
            (r"-?\d+(\.\d+)?\b", Number),
            (r'[^\s{}\[\],:="#$]+', Name),
            (r"\s+", Whitespace),
            (r".", Text),
        ]
    }


def setup(app: Any) -> None:
    app.add_lexer("hocon", HoconLexer)
