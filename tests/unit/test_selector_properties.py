"""Property tests for :mod:`dataplane.selector`.

Random expressions are generated together with an independent reference
evaluator, rendered with random spacing, quoting and redundant syntax, and
checked against what the parser and compiled matcher make of the text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from dataplane.errors import SelectorError
from dataplane.selector import NAMESPACE_LABEL, parse

Labels = Mapping[str, str]

KEYS = ["a", "b", "in", "team.example.com/x-y_1", NAMESPACE_LABEL]
VALUES = ["", "x", "y", "xy", "it's", 'say "x"']
OR, AND, UNARY = range(3)

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES))
many_labels_st = st.lists(labels_st, min_size=1, max_size=8)
space_st = st.sampled_from(["", " ", "\t", "  "])
gap_st = st.sampled_from([" ", "\t", " \t "])  # where whitespace is required


@dataclass(frozen=True)
class Expr:
    """Selector text plus how it should evaluate, built without the parser."""

    text: str
    binding: int
    evaluate: Callable[[Labels], bool]

    def operand(self, binding: int) -> str:
        return self.text if self.binding >= binding else f"({self.text})"


@st.composite
def quoted(draw: st.DrawFn, value: str) -> str:
    quotes = [q for q in "\"'" if q not in value]
    quote = draw(st.sampled_from(quotes))
    return quote + value + quote


@st.composite
def comparisons(draw: st.DrawFn) -> Expr:
    key, value, space = draw(st.sampled_from(KEYS)), draw(st.sampled_from(VALUES)), draw(space_st)
    operator = draw(st.sampled_from(["==", "!=", "contains", "starts with", "ends with"]))
    spelled = operator.replace(" ", draw(gap_st))
    lead = space if operator in ("==", "!=") else draw(gap_st)
    text = f"{key}{lead}{spelled}{space}{draw(quoted(value))}"
    tests: dict[str, Callable[[str], bool]] = {
        "==": lambda found: found == value,
        "contains": lambda found: value in found,
        "starts with": lambda found: found.startswith(value),
        "ends with": lambda found: found.endswith(value),
    }
    if operator == "!=":
        return Expr(text, UNARY, lambda labels: labels.get(key) != value)
    test = tests[operator]
    return Expr(text, UNARY, lambda labels: key in labels and test(labels[key]))


@st.composite
def memberships(draw: st.DrawFn) -> Expr:
    key, negated = draw(st.sampled_from(KEYS)), draw(st.booleans())
    values = draw(st.lists(st.sampled_from(VALUES), max_size=4))
    items = f",{draw(space_st)}".join(draw(quoted(value)) for value in values)
    operator = f"not{draw(gap_st)}in" if negated else "in"
    text = f"{key}{draw(gap_st)}{operator}{draw(space_st)}{{{items}}}"
    return Expr(text, UNARY, lambda labels: (labels.get(key) in values) != negated)


def _has(key: str) -> Expr:
    return Expr(f"has({key})", UNARY, lambda labels: key in labels)


leaves = st.one_of(
    st.just(Expr("all()", UNARY, lambda labels: True)),
    st.just(Expr("global()", UNARY, lambda labels: NAMESPACE_LABEL not in labels)),
    st.sampled_from(KEYS).map(_has),
    comparisons(),
    memberships(),
)


@st.composite
def negations(draw: st.DrawFn, inner: st.SearchStrategy[Expr]) -> Expr:
    child, count = draw(inner), draw(st.integers(1, 3))
    text = draw(space_st).join(["!"] * count + [child.operand(UNARY)])
    odd = count % 2 == 1
    return Expr(text, UNARY, lambda labels: child.evaluate(labels) != odd)


@st.composite
def junctions(draw: st.DrawFn, inner: st.SearchStrategy[Expr]) -> Expr:
    left, right, is_and = draw(inner), draw(inner), draw(st.booleans())
    binding, symbol = (AND, "&&") if is_and else (OR, "||")
    text = (
        f"{left.operand(binding)}{draw(space_st)}{symbol}{draw(space_st)}{right.operand(binding)}"
    )
    if is_and:
        return Expr(text, AND, lambda labels: left.evaluate(labels) and right.evaluate(labels))
    return Expr(text, OR, lambda labels: left.evaluate(labels) or right.evaluate(labels))


def _parenthesised(expr: Expr) -> Expr:
    return Expr(f"({expr.text})", UNARY, expr.evaluate)


exprs = st.recursive(
    leaves,
    lambda inner: st.one_of(negations(inner), junctions(inner), inner.map(_parenthesised)),
    max_leaves=12,
)


@settings(max_examples=200)
@given(exprs, many_labels_st)
def test_parse_agrees_with_the_reference_and_canonical_round_trips(
    expr: Expr, many_labels: list[dict[str, str]]
) -> None:
    selector = parse(expr.text)
    reparsed = parse(selector.canonical)
    assert reparsed.canonical == selector.canonical
    for labels in many_labels:
        assert selector.matches(labels) == expr.evaluate(labels)
        assert reparsed.matches(labels) == expr.evaluate(labels)


@settings(max_examples=200)
@given(exprs, many_labels_st)
def test_double_negation_evaluates_like_the_original(
    expr: Expr, many_labels: list[dict[str, str]]
) -> None:
    selector = parse(expr.text)
    for doubled in (parse(f"!!({expr.text})"), parse(f"!!{expr.text}")):
        assert doubled == selector
        for labels in many_labels:
            assert doubled.matches(labels) == selector.matches(labels)


@settings(max_examples=200)
@given(exprs)
def test_parsing_the_canonical_form_gives_an_equal_selector(expr: Expr) -> None:
    selector = parse(expr.text)
    assert parse(selector.canonical) == selector


@settings(max_examples=200)
@given(exprs, exprs, many_labels_st)
def test_de_morgan(left: Expr, right: Expr, many_labels: list[dict[str, str]]) -> None:
    negated_and = parse(f"!(({left.text}) && ({right.text}))")
    or_of_negations = parse(f"!({left.text}) || !({right.text})")
    for labels in many_labels:
        assert negated_and.matches(labels) == or_of_negations.matches(labels)


@settings(max_examples=200)
@given(exprs, labels_st, st.sampled_from(KEYS), st.sampled_from([*VALUES, None]))
def test_unreferenced_labels_do_not_change_the_result(
    expr: Expr, labels: dict[str, str], key: str, value: str | None
) -> None:
    selector = parse(expr.text)
    changed = {k: v for k, v in labels.items() if k != key}
    if value is not None:
        changed[key] = value
    if key not in selector.labels_referenced:
        assert selector.matches(changed) == selector.matches(labels)


@settings(max_examples=200)
@given(st.text(alphabet="ab(){}!&|=, \t\"'hasinot", max_size=30))
def test_arbitrary_text_parses_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse(text)
    except SelectorError as error:
        assert 0 <= error.column <= len(text)
    else:
        assert parse(selector.canonical) == selector
