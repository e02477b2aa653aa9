"""`Message.mentions(code)`: whether a message says `code` anywhere in the tree `render` walks."""
from __future__ import annotations

from core.platform.messages import N_, define

OUTER = define("test.mentions.outer", N_("%(kind)s: %(notes)s"))
NOTE = define("test.mentions.note", N_("note %(n)s"))
INNER = define("test.mentions.inner", N_("deep %(what)s"))


def test_a_code_is_found_in_the_message_its_params_and_lists_of_them_at_any_depth():
    message = OUTER(kind="click", notes=[NOTE(n=1), NOTE(n=INNER(what="x"))])
    assert message.mentions(OUTER.code) and message.mentions(NOTE.code) and message.mentions(INNER.code)
    assert not message.mentions("test.mentions.absent")
    assert not OUTER(kind="test.mentions.note", notes=[]).mentions(NOTE.code)  # a param's text is not a code
    assert not NOTE(n=None).mentions(INNER.code)


def test_a_message_read_back_from_the_database_mentions_the_same_codes():
    from core.platform.messages import Message

    stored = OUTER(kind="k", notes=(NOTE(n=INNER(what="y")),)).to_json()
    again = Message.from_json(stored["code"], stored["params"])
    assert again.mentions(INNER.code) and not again.mentions("legacy")
