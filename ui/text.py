"""User text shown as text: run names, dataset and file names, CSV column names and class labels, and the error
messages that quote them, wherever they meet Streamlit's Markdown (st.markdown, captions, alerts, labels, titles).

Streamlit renders those strings as GitHub Markdown plus its own directives, so a run named
`![x](http://host/x.png)` would make every viewer's browser fetch that host, `[a](http://host)` would be a
link, `:red[…]` a colour and `:material/home:` an icon. plain() backslash-escapes every character that
Markdown or Streamlit gives a meaning (CommonMark shows an escaped punctuation mark literally): emphasis, code,
links and images, headings, lists, quotes, tables, HTML and entities, `$` maths, and the `:` and `/` of
Streamlit's directives and `:material/…:` icons; the rest (, ; ? ' " @ % = ^) forms nothing and stays as is.
Bare addresses (http://…, www.…, a@b.c), emoji codes and `:streamlit:` are matched in the text after escapes
are resolved, so no escape can stop them: an invisible word joiner (U+2060) splits each such trigger instead.
Checked against Streamlit's own renderer in a real browser by tests/browser/test_user_text.py.
"""

from __future__ import annotations

import re

WORD_JOINER = "\u2060"
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&/])")
# A line break in a class label or a CSV header would start a new Markdown block (a list, a quote, a table row).
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# Where a text-level match would start: a bare address ("://" of http://, "www.", the "@" of an e-mail address),
# an emoji code or Streamlit's logo (":smile:", ":streamlit:").
_TRIGGERS = re.compile(r"(?<=:)(?=//|[\w+-]+:)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def plain(text: object) -> str:
    """`text` as Markdown that Streamlit shows literally, on one line: every Markdown character escaped and
    bare addresses split by an invisible word joiner, so nothing in it becomes a link, image, colour or icon."""
    one_line = _LINE_BREAKS.sub(" ", str(text))
    return _MARKDOWN.sub(r"\\\1", _TRIGGERS.sub(WORD_JOINER, one_line))
