"""Calico label selectors: parsing, canonical form and fast matching.

This module owns the selector language used by Calico policies, network sets
and IP pools::

    selector := ε | or                     (empty or blank text means all())
    or       := and { "||" and }
    and      := op { "&&" op }
    op       := { "!" } ( "all()" | "global()" | "has(" LABEL ")" | "(" or ")"
                | LABEL ( "==" | "!=" | "contains" | "starts with" | "ends with" ) STR
                | LABEL ( "in" | "not in" ) "{" [ STR { "," STR } ] "}" )
    LABEL    := [a-zA-Z0-9_./-]+           (1 to 512 characters)
    STR      := '"' [^"]* '"' | "'" [^']* "'"

Whitespace is spaces and tabs. ``!`` binds tighter than ``&&``, which binds
tighter than ``||``; repeated ``!`` collapse. A test on a missing label is
false, except ``k != "v"`` and ``k not in {...}``, which are true for it.

``global()`` matches objects that are not namespaced. _Labels carry no such
flag, so it is evaluated as "the label dict has no ``projectcalico.org/namespace``
key" (:data:`NAMESPACE_LABEL`): callers put the object's namespace under that
key for namespaced objects, as Calico does, and leave it out otherwise.

A :class:`Selector` is compiled to nested closures when parsed, so
:meth:`Selector.matches` costs a few dict look-ups. Use :func:`parse`, which
caches, when the same selector texts recur.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import ClassVar

import attrs

from dataplane._selector_tokens import Scanner
from dataplane.errors import SelectorError

__all__ = ["NAMESPACE_LABEL", "Selector", "SelectorError", "parse"]

NAMESPACE_LABEL = "projectcalico.org/namespace"
"""The label whose absence makes ``global()`` true."""

_MAX_NESTING = 100
_CACHE_SIZE = 8192

_Labels = Mapping[str, str]
_Matcher = Callable[[_Labels], bool]

# Binding strength of a node's canonical text; an operand binding more
# loosely than its context needs parentheses.
_OR, _AND, _UNARY = range(3)


def _true(labels: _Labels) -> bool:
    return True


def _false(labels: _Labels) -> bool:
    return False


def _quote(value: str) -> str:
    return f"'{value}'" if '"' in value else f'"{value}"'


def _balanced(
    matchers: Sequence[_Matcher], pair: Callable[[_Matcher, _Matcher], _Matcher]
) -> _Matcher:
    """Combine two or more matchers as a balanced tree of ``pair`` calls.

    A tree is faster than looping over the matchers and, unlike a chain, stays
    shallow for long ``a && b && ...`` selectors.
    """
    if len(matchers) == 1:
        return matchers[0]
    middle = len(matchers) // 2
    return pair(_balanced(matchers[:middle], pair), _balanced(matchers[middle:], pair))


class _Node(abc.ABC):
    """A node of a parsed selector."""

    __slots__ = ()
    binding = _UNARY

    @abc.abstractmethod
    def render(self) -> str:
        """Canonical text of this node."""

    @abc.abstractmethod
    def compile(self) -> _Matcher:
        """A function evaluating this node against a label dict."""

    @abc.abstractmethod
    def labels(self) -> frozenset[str]:
        """Every label key this node reads."""

    def operand(self, binding: int) -> str:
        """Canonical text, parenthesised if it binds more loosely than ``binding``."""
        return self.render() if self.binding >= binding else f"({self.render()})"

    def render_negated(self) -> str:
        return "!" + self.operand(_UNARY)

    def compile_negated(self) -> _Matcher:
        matcher = self.compile()
        return lambda labels: not matcher(labels)


@attrs.frozen
class _All(_Node):
    def render(self) -> str:
        return "all()"

    def compile(self) -> _Matcher:
        return _true

    def compile_negated(self) -> _Matcher:
        return _false

    def labels(self) -> frozenset[str]:
        return frozenset()


@attrs.frozen
class _Global(_Node):
    def render(self) -> str:
        return "global()"

    def compile(self) -> _Matcher:
        return lambda labels: NAMESPACE_LABEL not in labels

    def compile_negated(self) -> _Matcher:
        return lambda labels: NAMESPACE_LABEL in labels

    def labels(self) -> frozenset[str]:
        return frozenset({NAMESPACE_LABEL})


@attrs.frozen
class _KeyTest(_Node):
    """A test on the label ``key``."""

    key: str

    def labels(self) -> frozenset[str]:
        return frozenset({self.key})


@attrs.frozen
class _Has(_KeyTest):
    def render(self) -> str:
        return f"has({self.key})"

    def compile(self) -> _Matcher:
        key = self.key
        return lambda labels: key in labels

    def compile_negated(self) -> _Matcher:
        key = self.key
        return lambda labels: key not in labels


@attrs.frozen
class _Equals(_KeyTest):
    value: str

    def render(self) -> str:
        return f"{self.key} == {_quote(self.value)}"

    def render_negated(self) -> str:
        return f"{self.key} != {_quote(self.value)}"

    def compile(self) -> _Matcher:
        key, value = self.key, self.value
        return lambda labels: labels.get(key) == value

    def compile_negated(self) -> _Matcher:
        key, value = self.key, self.value
        return lambda labels: labels.get(key) != value


_STRING_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": str.__contains__,
    "starts with": str.startswith,
    "ends with": str.endswith,
}


@attrs.frozen
class _StringTest(_KeyTest):
    """``contains``, ``starts with`` or ``ends with``; false if the label is missing."""

    operator: str
    value: str

    def render(self) -> str:
        return f"{self.key} {self.operator} {_quote(self.value)}"

    def compile(self) -> _Matcher:
        key, value, test = self.key, self.value, _STRING_TESTS[self.operator]

        def match(labels: _Labels) -> bool:
            found = labels.get(key)
            return found is not None and test(found, value)

        return match


@attrs.frozen
class _In(_KeyTest):
    values: frozenset[str]

    def render(self) -> str:
        return f"{self.key} in {self._render_set()}"

    def render_negated(self) -> str:
        return f"{self.key} not in {self._render_set()}"

    def _render_set(self) -> str:
        return "{" + ", ".join(_quote(value) for value in sorted(self.values)) + "}"

    def compile(self) -> _Matcher:
        key, values = self.key, self.values
        return lambda labels: labels.get(key) in values

    def compile_negated(self) -> _Matcher:
        key, values = self.key, self.values
        return lambda labels: labels.get(key) not in values


@attrs.frozen
class _Not(_Node):
    child: _Node

    def render(self) -> str:
        return self.child.render_negated()

    def compile(self) -> _Matcher:
        return self.child.compile_negated()

    def labels(self) -> frozenset[str]:
        return self.child.labels()


@attrs.frozen
class _Junction(_Node):
    """Two or more operands joined by ``&&`` (:class:`_And`) or ``||`` (:class:`_Or`)."""

    children: tuple[_Node, ...]
    symbol: ClassVar[str]

    @classmethod
    def of(cls, parts: Iterable[_Node]) -> _Node:
        """Join ``parts``, flattening operands that are the same junction."""
        flat: list[_Node] = []
        for part in parts:
            flat.extend(part.children if isinstance(part, cls) else [part])
        return flat[0] if len(flat) == 1 else cls(tuple(flat))

    @staticmethod
    @abc.abstractmethod
    def pair(first: _Matcher, second: _Matcher) -> _Matcher:
        """A matcher combining two operand matchers."""

    def render(self) -> str:
        return f" {self.symbol} ".join(child.operand(self.binding) for child in self.children)

    def compile(self) -> _Matcher:
        return _balanced([child.compile() for child in self.children], self.pair)

    def labels(self) -> frozenset[str]:
        return frozenset().union(*(child.labels() for child in self.children))


@attrs.frozen
class _And(_Junction):
    binding = _AND
    symbol = "&&"

    @staticmethod
    def pair(first: _Matcher, second: _Matcher) -> _Matcher:
        return lambda labels: first(labels) and second(labels)


@attrs.frozen
class _Or(_Junction):
    binding = _OR
    symbol = "||"

    @staticmethod
    def pair(first: _Matcher, second: _Matcher) -> _Matcher:
        return lambda labels: first(labels) or second(labels)


_ALL = _All()


def _negate(node: _Node) -> _Node:
    return node.child if isinstance(node, _Not) else _Not(node)


class _Parser:
    """Recursive descent over the grammar in the module docstring."""

    def __init__(self, text: str) -> None:
        self._scan = Scanner(text)
        self._depth = 0

    def parse(self) -> _Node:
        if self._scan.at_end():
            return _ALL
        node = self._or()
        if not self._scan.at_end():
            raise self._scan.error("unexpected text after the selector")
        return node

    def _or(self) -> _Node:
        parts = [self._and()]
        while self._scan.accept("||"):
            parts.append(self._and())
        return _Or.of(parts)

    def _and(self) -> _Node:
        parts = [self._op()]
        while self._scan.accept("&&"):
            parts.append(self._op())
        return _And.of(parts)

    def _op(self) -> _Node:
        negated = False
        while self._scan.accept("!"):
            negated = not negated
        node = self._term()
        return _negate(node) if negated else node

    def _term(self) -> _Node:
        scan = self._scan
        if scan.accept("("):
            return self._group()
        if scan.accept("all("):
            scan.expect(")")
            return _ALL
        if scan.accept("global("):
            scan.expect(")")
            return _Global()
        if scan.accept("has("):
            key = scan.label()
            scan.expect(")")
            return _Has(key)
        if not scan.at_label():
            raise scan.error("expected a label, '!', '(', has(), all() or global()")
        return self._comparison(scan.label())

    def _group(self) -> _Node:
        if self._depth == _MAX_NESTING:
            raise self._scan.error(f"parentheses nested deeper than {_MAX_NESTING}")
        self._depth += 1
        node = self._or()
        self._scan.expect(")")
        self._depth -= 1
        return node

    def _comparison(self, key: str) -> _Node:
        scan = self._scan
        if scan.accept("=="):
            return _Equals(key, scan.string())
        if scan.accept("!="):
            return _Not(_Equals(key, scan.string()))
        for operator in _STRING_TESTS:
            if scan.accept_keyword(operator):
                return _StringTest(key, operator, scan.string())
        if scan.accept_keyword("in"):
            return _In(key, self._set())
        if scan.accept_keyword("not in"):
            return _Not(_In(key, self._set()))
        raise scan.error(
            "unknown operator; expected ==, !=, in, not in, contains, starts with or ends with"
        )

    def _set(self) -> frozenset[str]:
        scan = self._scan
        scan.expect("{")
        if scan.accept("}"):
            return frozenset()
        values = {scan.string()}
        while scan.accept(","):
            values.add(scan.string())
        if not scan.accept("}"):
            raise scan.error("expected ',' or '}'")
        return frozenset(values)


@attrs.frozen
class Selector:
    """An immutable, compiled selector; construct with :meth:`parse` or :func:`parse`.

    ``Selector(text)`` parses ``text`` and raises :class:`SelectorError` if it
    is not a valid selector. Equality and hashing use :attr:`canonical`, so
    ``a=='x'`` and ``a == "x"`` are the same selector.
    """

    text: str = attrs.field(eq=False)
    """The text as given."""
    canonical: str = attrs.field(init=False)
    """Normalised text: single spaces, double quotes where possible, sorted
    sets, minimal parentheses, ``!`` collapsed; an empty selector is ``all()``."""
    labels_referenced: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    """Every label key whose value or presence can change the result."""
    _root: _Node = attrs.field(init=False, eq=False, repr=False)
    _match: _Matcher = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        root = _Parser(self.text).parse()
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "canonical", root.render())
        object.__setattr__(self, "labels_referenced", root.labels())
        object.__setattr__(self, "_match", root.compile())

    @classmethod
    def parse(cls, text: str) -> Selector:
        """Parse ``text``; raises :class:`SelectorError` naming the bad column."""
        return cls(text)

    def __reduce__(self) -> tuple[type[Selector], tuple[str]]:
        # The compiled matcher is made of closures, which do not pickle.
        return (Selector, (self.text,))

    @property
    def is_all(self) -> bool:
        """True if the selector is ``all()``: empty, ``all()``, ``(all())``, ``!!all()``."""
        return isinstance(self._root, _All)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected."""
        return self._match(labels)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(text: str) -> Selector:
    return Selector(text)


def parse(text: str) -> Selector:
    """Like :meth:`Selector.parse`, but returns a cached object for repeated texts."""
    return _parse_cached(text)
