"""Example-based tests for :mod:`dataplane.selector`."""

from __future__ import annotations

import copy
import pickle

import attrs
import pytest

from dataplane.errors import SelectorError, ValidationError
from dataplane.selector import NAMESPACE_LABEL, Selector, parse

WEB = {"app": "web", "tier": "frontend", "env": "prod"}
DB = {"app": "db", "tier": "backend"}
EMPTY: dict[str, str] = {}

MATCH_CASES = [
    # all() and the empty selector
    ("", EMPTY, True),
    ("  \t ", WEB, True),
    ("all()", WEB, True),
    ("all( )", EMPTY, True),
    ("!all()", WEB, False),
    ("!all()", EMPTY, False),
    # ==, != and missing labels
    ('app == "web"', WEB, True),
    ('app == "web"', DB, False),
    ('app == "web"', EMPTY, False),
    ('app != "web"', WEB, False),
    ('app != "web"', DB, True),
    ('app != "web"', EMPTY, True),
    ('app == ""', {"app": ""}, True),
    ('app == ""', EMPTY, False),
    # has()
    ("has(tier)", DB, True),
    ("has(tier)", EMPTY, False),
    ("!has(env)", DB, True),
    ("has( env )", WEB, True),
    # in / not in, including the empty set
    ('app in {"web", "db"}', DB, True),
    ('app in {"web", "db"}', {"app": "cache"}, False),
    ('app in {"web"}', EMPTY, False),
    ("app in {}", WEB, False),
    ('app not in {"web", "db"}', DB, False),
    ('app not in {"web", "db"}', {"app": "cache"}, True),
    ('app not in {"web"}', EMPTY, True),
    ("app not in {}", EMPTY, True),
    # string operators need the label
    ('tier contains "end"', WEB, True),
    ('tier contains "end"', EMPTY, False),
    ('tier contains ""', DB, True),
    ('tier starts with "front"', WEB, True),
    ('tier starts with "front"', DB, False),
    ('tier starts with ""', EMPTY, False),
    ('tier ends with "end"', DB, True),
    ('tier ends with "front"', WEB, False),
    ('!tier contains "x"', EMPTY, True),
    # precedence: && binds tighter than ||, ! tighter than &&
    ('a == "1" || b == "2" && c == "3"', {"a": "1"}, True),
    ('a == "1" || b == "2" && c == "3"', {"b": "2"}, False),
    ('a == "1" || b == "2" && c == "3"', {"b": "2", "c": "3"}, True),
    ('(a == "1" || b == "2") && c == "3"', {"a": "1"}, False),
    ('!a == "1" && b == "2"', {"b": "2"}, True),
    ('!(a == "1" && b == "2")', {"b": "2"}, True),
    ('!(a == "1" && b == "2")', {"a": "1", "b": "2"}, False),
    # repeated !
    ("!!has(a)", {"a": "x"}, True),
    ("!!!has(a)", {"a": "x"}, False),
    ("! ! !!has(a)", EMPTY, False),
    ("!(!has(a))", EMPTY, False),
    # quotes, whitespace and tabs
    ("app == 'web'", WEB, True),
    ('quote == "it\'s"', {"quote": "it's"}, True),
    ("quote == 'say \"hi\"'", {"quote": 'say "hi"'}, True),
    ("\tapp\t==\t'web'\t&&\thas(tier) ", WEB, True),
    ('app=="web"&&tier!="backend"', WEB, True),
    ("app in{\"web\",'db'}", DB, True),
    # label characters, and keywords usable as label names
    ('example.com/team-a_1 == "x"', {"example.com/team-a_1": "x"}, True),
    ('in in {"in"}', {"in": "in"}, True),
    ('contains contains "t"', {"contains": "it"}, True),
    ('has == "x"', {"has": "x"}, True),
    # global()
    ("global()", EMPTY, True),
    ("global()", {NAMESPACE_LABEL: "default"}, False),
    ("!global()", {NAMESPACE_LABEL: "default"}, True),
    ('global() && role == "edge"', {"role": "edge"}, True),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCH_CASES)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Selector.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", "all()"),
        ("  ", "all()"),
        ("has(a)&&b=='x'", 'has(a) && b == "x"'),
        ("!!!has(a)", "!has(a)"),
        ('!(a != "x")', 'a == "x"'),
        ('!a == "x"', 'a != "x"'),
        ('!(a in {"x"})', 'a not in {"x"}'),
        ('a in {"y", "x", "y"}', 'a in {"x", "y"}'),
        ("a in { }", "a in {}"),
        ("a == 'say \"hi\"'", "a == 'say \"hi\"'"),
        ("(has(a) && has(b)) && has(c)", "has(a) && has(b) && has(c)"),
        ("(has(a) || has(b)) && has(c)", "(has(a) || has(b)) && has(c)"),
        ("has(a) || (has(b) && has(c))", "has(a) || has(b) && has(c)"),
        ("!(has(a) || has(b))", "!(has(a) || has(b))"),
        ('a  starts\twith "x"', 'a starts with "x"'),
        ('a not   in {"x"}', 'a not in {"x"}'),
        ("global( )", "global()"),
        ("((all()))", "all()"),
    ],
)
def test_canonical(text: str, canonical: str) -> None:
    selector = Selector.parse(text)
    assert selector.canonical == canonical
    assert selector.text == text


ERROR_CASES = [
    ('app == "web', 7, "unterminated string"),
    ("app == 'web\"", 7, "unterminated string"),
    ('app = "web"', 4, "unknown operator"),
    ('app inn {"a"}', 4, "unknown operator"),
    ("app", 3, "unknown operator"),
    ('app in {"a", "b"', 16, "expected ',' or '}'"),
    ('app in {"a" "b"}', 12, "expected ',' or '}'"),
    ('app in {"a",}', 12, "expected a quoted string"),
    ('app in "a"', 7, "expected '{'"),
    ('app == "web" tier', 13, "unexpected text after the selector"),
    ("has(a))", 6, "unexpected text after the selector"),
    ("has()", 4, "expected a label"),
    ('== "x"', 0, "expected a label"),
    ("has(a) && ", 10, "expected a label"),
    ("has(a) & has(b)", 7, "unexpected text after the selector"),
    ("has(a", 5, "expected ')'"),
    ("(has(a) || has(b)", 17, "expected ')'"),
    ("all(", 4, "expected ')'"),
    ("app == web", 7, "expected a quoted string"),
    ("has(a)\nhas(b)", 6, "unexpected text after the selector"),
    ("has(" + "a" * 513 + ")", 4, "longer than 512"),
]


@pytest.mark.parametrize(("text", "column", "reason"), ERROR_CASES)
def test_parse_errors_point_at_the_column(text: str, column: int, reason: str) -> None:
    with pytest.raises(SelectorError) as caught:
        Selector.parse(text)
    assert caught.value.column == column
    assert reason in caught.value.reason
    assert caught.value.selector == text


def test_error_message_shows_a_caret_under_the_column() -> None:
    with pytest.raises(SelectorError) as caught:
        parse("a == 'x' || b ~ 'y'")
    assert "\n    a == 'x' || b ~ 'y'\n" + " " * 18 + "^" in str(caught.value)
    assert isinstance(caught.value, ValidationError)


def test_label_of_512_characters_is_accepted() -> None:
    label = "k" * 512
    assert parse(f"has({label})").matches({label: ""})


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(SelectorError, match="nested deeper"):
        parse("(" * 1000 + "all()" + ")" * 1000)
    assert parse("(" * 50 + "all()" + ")" * 50).is_all


def test_long_conjunction_evaluates() -> None:
    selector = parse(" && ".join(f"has(k{i})" for i in range(2000)))
    labels = {f"k{i}": "" for i in range(2000)}
    assert selector.matches(labels)
    del labels["k1999"]
    assert not selector.matches(labels)


def test_labels_referenced() -> None:
    selector = parse('a == "1" || !has(b) && c in {} || d starts with "x" || all()')
    assert selector.labels_referenced == frozenset({"a", "b", "c", "d"})
    assert parse("global()").labels_referenced == frozenset({NAMESPACE_LABEL})
    assert parse("").labels_referenced == frozenset()


@pytest.mark.parametrize(
    ("text", "is_all"),
    [
        ("", True),
        (" ", True),
        ("all()", True),
        ("(all())", True),
        ("!!all()", True),
        ("!all()", False),
        ("has(a)", False),
        ("global()", False),
        ("all() || has(a)", False),
    ],
)
def test_is_all(text: str, is_all: bool) -> None:
    assert parse(text).is_all is is_all


def test_equality_and_hash_use_the_canonical_form() -> None:
    first, second = parse("a=='x'&&has(b)"), parse('a == "x"  &&  has(b)')
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert first.text != second.text
    assert first != parse('a == "y" && has(b)')


def test_selector_is_immutable() -> None:
    selector = parse("has(a)")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        selector.text = "has(b)"  # type: ignore[misc]


def test_selector_pickles_and_copies() -> None:
    selector = parse('a in {"x"} || global()')
    for clone in (pickle.loads(pickle.dumps(selector)), copy.deepcopy(selector)):
        assert clone == selector
        assert clone.text == selector.text
        assert clone.matches({"a": "x", NAMESPACE_LABEL: "ns"})


def test_module_parse_caches() -> None:
    assert parse("has(cached)") is parse("has(cached)")
    assert parse("has(cached)") == Selector.parse("has(cached)")
    assert Selector("has(a)") == Selector.parse("has(a)")
