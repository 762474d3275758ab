"""Character-level scanning for the selector parser in :mod:`dataplane.selector`.

This module owns the lexical rules of Calico's selector grammar: what counts
as whitespace, a label and a quoted string, and how keyword operators are
delimited. The parser drives a :class:`Scanner` and asks for the token it
expects next, so words such as ``in`` or ``contains`` are still usable as
label names. Every failure is a :class:`~dataplane.errors.SelectorError`
pointing at the offending column.
"""

from __future__ import annotations

import string

from dataplane.errors import SelectorError

__all__ = ["Scanner"]

_LABEL_CHARS = frozenset(string.ascii_letters + string.digits + "_./-")
_MAX_LABEL_LENGTH = 512
_WHITESPACE = " \t"
_QUOTES = "\"'"


class Scanner:
    """A cursor over a selector's text; every read skips leading whitespace."""

    __slots__ = ("_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0

    def at_end(self) -> bool:
        """True when only whitespace is left."""
        self._skip_space()
        return self._pos == len(self._text)

    def accept(self, literal: str) -> bool:
        """Consume ``literal`` if the text continues with it."""
        self._skip_space()
        if not self._text.startswith(literal, self._pos):
            return False
        self._pos += len(literal)
        return True

    def accept_keyword(self, keyword: str) -> bool:
        """Consume a keyword operator such as ``not in`` or ``starts with``.

        Words of a keyword are separated by one or more spaces or tabs, and the
        last word must not run on into label characters (``inx`` is not ``in``).
        """
        self._skip_space()
        pos = self._pos
        for index, word in enumerate(keyword.split()):
            if index and not self._is_space(pos):
                return False
            while self._is_space(pos):
                pos += 1
            if not self._text.startswith(word, pos):
                return False
            pos += len(word)
        if pos < len(self._text) and self._text[pos] in _LABEL_CHARS:
            return False
        self._pos = pos
        return True

    def expect(self, literal: str) -> None:
        """Consume ``literal`` or fail pointing at where it should have been."""
        if not self.accept(literal):
            raise self.error(f"expected {literal!r}")

    def at_label(self) -> bool:
        """True when the next non-blank character can start a label."""
        self._skip_space()
        return self._pos < len(self._text) and self._text[self._pos] in _LABEL_CHARS

    def label(self) -> str:
        """Consume a label key of 1 to 512 label characters."""
        self._skip_space()
        start = end = self._pos
        while end < len(self._text) and self._text[end] in _LABEL_CHARS:
            end += 1
        if end == start:
            raise self.error("expected a label")
        if end - start > _MAX_LABEL_LENGTH:
            raise self.error(f"label is longer than {_MAX_LABEL_LENGTH} characters")
        self._pos = end
        return self._text[start:end]

    def string(self) -> str:
        """Consume a single- or double-quoted string; there are no escapes."""
        self._skip_space()
        start = self._pos
        if start == len(self._text) or self._text[start] not in _QUOTES:
            raise self.error("expected a quoted string")
        close = self._text.find(self._text[start], start + 1)
        if close < 0:
            raise self.error("unterminated string")
        self._pos = close + 1
        return self._text[start + 1 : close]

    def error(self, reason: str) -> SelectorError:
        """An error located at the current position."""
        return SelectorError(self._text, self._pos, reason)

    def _skip_space(self) -> None:
        while self._is_space(self._pos):
            self._pos += 1

    def _is_space(self, pos: int) -> bool:
        return pos < len(self._text) and self._text[pos] in _WHITESPACE
