"""Shared machinery of the model: lenient converters, then one validation pass.

Converters never raise: they turn what they can (``"10.0.0.1"`` into an
address, a list into a tuple) and leave the rest as it was. Each class then
checks its fields in ``_problems()`` and :class:`ModelObject` raises one
:class:`~dataplane.errors.ValidationError` listing everything wrong with the
object, named by kind and key. This keeps "which object, which field" in one
place instead of in every converter.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import attrs

from dataplane.errors import Problem, ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL_MAX = 317  # prefix (253) + "/" + name (63)


@attrs.frozen(order=True)
class ObjectKey:
    """Identity of a desired-state object: its kind, namespace (or "") and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        path = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {path}"


class ModelObject:
    """Mixin for top-level desired-state objects: validates on construction."""

    kind: ClassVar[str]
    name: str

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, getattr(self, "namespace", None) or "", self.name)

    def _problems(self) -> Iterator[Problem]:
        return iter(())

    def __attrs_post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValidationError(str(self.key), problems)


class ValueObject:
    """Mixin for nested values: they report problems to the object holding them."""

    def _problems(self) -> Iterator[Problem]:
        return iter(())


def nested(field: str, values: Iterable[ValueObject]) -> Iterator[Problem]:
    """Problems of nested values, with their index in ``field`` prefixed."""
    for i, value in enumerate(values):
        for p in value._problems():
            sub = f"{field}[{i}]" + (f".{p.field}" if p.field else "")
            yield Problem(sub, p.message)


def nested_one(field: str, value: ValueObject | None) -> Iterator[Problem]:
    if value is None:
        return
    for p in value._problems():
        yield Problem(f"{field}.{p.field}" if p.field else field, p.message)


# ---------------------------------------------------------------- converters


def to_address(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value.strip())
        except ValueError:
            return value
    return value


def to_addresses(values: Any) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(to_address(v) for v in values)


def to_network(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            return value
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ipaddress.ip_network(value)
    return value


def to_networks(values: Any) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(to_network(v) for v in values)


def to_tuple(values: Any) -> tuple[Any, ...]:
    if values is None:
        return ()
    if isinstance(values, str | bytes):
        return (values,)
    return tuple(values)


def to_str_tuple(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in to_tuple(values))


def to_labels(values: Any) -> Mapping[str, str]:
    """Labels as an immutable, hashable, sorted mapping."""
    if values is None:
        return FrozenLabels()
    if isinstance(values, FrozenLabels):
        return values
    return FrozenLabels(values)


class FrozenLabels(dict[str, str]):
    """A read-only dict that hashes, so frozen attrs values stay hashable."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("labels are immutable")

    __setitem__ = _readonly  # type: ignore[assignment,unused-ignore]
    __delitem__ = _readonly  # type: ignore[assignment,unused-ignore]
    update = _readonly  # type: ignore[assignment,unused-ignore]
    pop = _readonly  # type: ignore[assignment,unused-ignore]
    clear = _readonly  # type: ignore[assignment,unused-ignore]
    setdefault = _readonly  # type: ignore[assignment,unused-ignore]
    popitem = _readonly  # type: ignore[assignment,unused-ignore]


# ---------------------------------------------------------------- checks


def check_name(field: str, value: Any, *, allow_empty: bool = False) -> Iterator[Problem]:
    if not isinstance(value, str):
        yield Problem(field, f"must be a string, not {type(value).__name__}")
    elif not value and not allow_empty:
        yield Problem(field, "must not be empty")
    elif len(value) > 253:
        yield Problem(field, "longer than 253 characters")


def check_addresses(field: str, values: Iterable[Any]) -> Iterator[Problem]:
    for i, v in enumerate(values):
        if not isinstance(v, ipaddress.IPv4Address | ipaddress.IPv6Address):
            yield Problem(f"{field}[{i}]", f"not an IP address: {v!r}")


def check_networks(field: str, values: Iterable[Any]) -> Iterator[Problem]:
    for i, v in enumerate(values):
        if not isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network):
            yield Problem(f"{field}[{i}]", f"not a CIDR: {v!r}")


def check_port(field: str, value: Any, *, optional: bool = False) -> Iterator[Problem]:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        yield Problem(field, f"not a port number (1-65535): {value!r}")


def check_labels(field: str, labels: Mapping[str, str]) -> Iterator[Problem]:
    for k, v in labels.items():
        if not isinstance(k, str) or not k or len(k) > _LABEL_MAX:
            yield Problem(f"{field}[{k!r}]", "label key must be a non-empty string")
        elif not isinstance(v, str):
            yield Problem(f"{field}[{k!r}]", f"label value must be a string, not {v!r}")


def check_type(
    field: str, value: Any, cls: type | tuple[type, ...], what: str
) -> Iterator[Problem]:
    if not isinstance(value, cls):
        yield Problem(field, f"must be {what}, not {value!r}")


def check_selector(field: str, text: Any) -> Iterator[Problem]:
    from dataplane.errors import SelectorError
    from dataplane.selector import parse

    if text is None:
        return
    if not isinstance(text, str):
        yield Problem(field, f"selector must be a string, not {text!r}")
        return
    try:
        parse(text)
    except SelectorError as exc:
        yield Problem(field, f"{exc.reason} at column {exc.column} in {text!r}")
