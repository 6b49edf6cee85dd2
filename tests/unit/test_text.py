"""ui.text.plain: user text becomes Markdown that shows exactly that text, with nothing Streamlit would turn into a
link, an image, a colour, an icon, an emoji or maths.

CommonMark's own parser (markdown-it-py) checks the escaping; Streamlit's extras (directives, :material/ icons,
emoji codes, bare-address autolinks, $ maths) act on the parsed text or the raw source, so they are checked by the
patterns Streamlit's renderer matches. tests/browser/test_user_text.py checks the same in Streamlit itself.
"""

import html
import re

import pytest
from markdown_it import MarkdownIt

from ui.text import WORD_JOINER, plain

HOSTILE = [
    "![x](http://127.0.0.1:9/x.png) [phish](http://127.0.0.1:9/) :red[boom] :material/home:",
    "[a](http://127.0.0.1:9/a)",
    "![i](http://127.0.0.1:9/i.png)",
    "<img src=http://127.0.0.1:9/h.png> <b>bold</b> <http://127.0.0.1:9/angle> &lt; &#58;",
    "**bold** _it_ `code` ~~gone~~ $x^2$ $$y$$ \\*not\\* C:\\temp\\",
    "# heading",
    "- item",
    "+ item",
    "1. item",
    "2) item",
    "> quote",
    "| a | b |",
    "***",
    "[ref]: http://127.0.0.1:9/ref",
    "http://127.0.0.1:9/bare https://127.0.0.1:9/s WWW.evil.example mail@evil.example",
    ":smile: :streamlit: :blue-badge[b] :small[s] :orange-background[o] :material/lock:",
    "line one\n\n# line two\r\n- three",
]
PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def shown(markdown: str) -> str:
    """The text a reader sees when this Markdown is rendered, or an AssertionError if it renders anything but text."""
    rendered = PARSER.render(markdown)
    assert rendered.startswith("<p>") and rendered.endswith("</p>\n"), rendered
    body = rendered[len("<p>") : -len("</p>\n")]
    assert "<" not in body, f"markup in {rendered!r}"  # every < of the text is &lt;: no tag was made
    return html.unescape(body)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_renders_as_exactly_that_text(text):
    expected = re.sub(r"[\r\n]+", " ", text)
    assert shown(plain(text)).replace(WORD_JOINER, "") == expected


@pytest.mark.parametrize("text", HOSTILE)
def test_nothing_is_left_for_streamlits_own_markdown_extras(text):
    escaped = plain(text)
    text_seen = shown(escaped)
    assert ":material/" not in escaped  # Streamlit rewrites this in the source, before parsing
    assert not re.search(r"(?<!\\)\$", escaped)  # maths starts at an unescaped $
    assert not re.search(r"(?<!\\):", escaped)  # directives (:red[…]) start at an unescaped colon
    assert not re.search(r":[\w+-]+:", text_seen)  # emoji codes and :streamlit:, matched in the parsed text
    assert not re.search(r"https?://|www\.|@[\w-]", text_seen, re.IGNORECASE)  # GitHub's bare-address autolinks


def test_ordinary_names_stay_readable():
    assert plain("run 3") == "run 3"
    assert plain("bt iris") == "bt iris"
    assert plain('Deleted keeper? it\'s "done", 50% = 1/2') == 'Deleted keeper? it\'s "done", 50% = 1\\/2'
    assert plain("iris · Dense(12, relu)") == "iris · Dense\\(12, relu\\)"
    assert plain(3.5) == "3\\.5"
