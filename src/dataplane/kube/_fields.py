"""Field readers for API objects that record problems instead of raising.

A node agent fixing a manifest wants every problem of the document at once,
named by the path it wrote (``spec.ports[0].port``), not the first one in
snake case. So converters read fields through :class:`Value`, which notes
wrong types and bad values in the :class:`Doc` and hands back ``None`` (or a
harmless default) so reading can go on. Model objects are then built through
:meth:`Doc.build`, which maps the model's own validation problems back to
manifest paths with a :class:`FieldMap`; :meth:`Doc.finish` raises one
:class:`~dataplane.errors.ManifestError` holding all of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from dataplane.errors import ManifestError, Problem, ValidationError
from dataplane.model import IPAddress, IPNetwork

T = TypeVar("T")

DEFAULT_NAMESPACE = "default"  # what kubectl assumes for a namespaced manifest without one


@attrs.frozen
class Skip:
    """A well-formed object that produces nothing, and why (reported, never dropped)."""

    reason: str


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _join(path: str, key: str) -> str:
    """``spec`` + ``ports`` → ``spec.ports``; the root path is empty."""
    return f"{path}.{key}" if path else key


def covers(outer: str, inner: str) -> bool:
    """Whether a problem at ``outer`` already explains one at ``inner``."""
    return inner == outer or inner.startswith((outer + ".", outer + "["))


class Doc:
    """One API object being converted: its identity for errors and its problems."""

    def __init__(self, raw: Mapping[str, Any], *, namespaced: bool) -> None:
        self.problems: list[Problem] = []
        self.root = Value(raw, "", self)
        self.kind = str(raw.get("kind"))
        meta = self.root["metadata"]
        self.name = meta["name"].required_text()
        self.namespace = (meta["namespace"].text() or DEFAULT_NAMESPACE) if namespaced else ""
        self.labels = meta["labels"].str_map()
        self.annotations = meta["annotations"].str_map()

    def __str__(self) -> str:
        name = self.name or "<no name>"
        return f"{self.kind} {self.namespace}/{name}" if self.namespace else f"{self.kind} {name}"

    def problem(self, path: str, message: str) -> None:
        """Record a problem, unless one already recorded covers the same field."""
        if not any(covers(p.field, path) for p in self.problems):
            self.problems.append(Problem(path, message))

    def build(self, fields: FieldMap, factory: Callable[[], T]) -> T | None:
        """Construct a model object, turning its validation problems into ours.

        Returns ``None`` when the model refused; :meth:`finish` then raises.
        A model problem that one already recorded explains (same field, inside
        it, or around it) is left out.
        """
        try:
            return factory()
        except ValidationError as exc:
            for p in exc.problems:
                found = fields.translate(p)
                # A value we already reported was left out, so the model may complain
                # about its container ("an endpoint needs an address"): not news.
                if not any(covers(found.field, q.field) for q in self.problems):
                    self.problem(found.field, found.message)
            return None

    def check(self) -> None:
        """Raise now if anything was found, so a malformed object is never just skipped."""
        if self.problems:
            raise ManifestError(str(self), self.problems)

    def finish(self, value: T | None) -> T:
        """The converted value, or one ManifestError with every problem found."""
        self.check()
        assert value is not None, "build() returns None only after recording problems"
        return value


_CAMEL = re.compile(r"_([a-z0-9])")
# Model field names whose API spelling is not plain camel case.
_RENAMES = {"not_icmp": "notICMP", "pre_dnat": "preDNAT"}


def camel(segment: str) -> str:
    """A model path segment (``node_port[1]``) in API spelling (``nodePort[1]``)."""
    name, bracket, rest = segment.partition("[")
    name = _RENAMES.get(name) or _CAMEL.sub(lambda m: m.group(1).upper(), name)
    return name + bracket + rest


@attrs.frozen
class FieldMap:
    """Maps model field paths back to the manifest paths they came from.

    ``prefixes`` maps a model path prefix (``ports``, ``ingress[3]``) to the
    manifest path it was read from; the rest of the model path follows in
    camel case. ``opaque`` prefixes name an origin whose inner structure does
    not mirror the model (one NetworkPolicy rule becomes several model
    rules): the problem points at the origin and the message keeps the model
    path.
    """

    prefixes: Mapping[str, str]
    opaque: Mapping[str, str] = attrs.field(factory=dict)

    def translate(self, problem: Problem) -> Problem:
        field = problem.field
        for table, is_opaque in ((self.opaque, True), (self.prefixes, False)):
            best = max((p for p in table if covers(p, field)), key=len, default=None)
            if best is None:
                continue
            rest = field[len(best) :]
            if is_opaque:
                inner = rest.lstrip(".")
                return Problem(
                    table[best], f"{inner}: {problem.message}" if inner else problem.message
                )
            return Problem(
                table[best] + ".".join(camel(s) for s in rest.split(".")), problem.message
            )
        return Problem(field, problem.message)


_METADATA = {
    "name": "metadata.name",
    "namespace": "metadata.namespace",
    "labels": "metadata.labels",
}


def spec_fields(names: Sequence[str], **renames: str) -> FieldMap:
    """A FieldMap for objects whose model fields are spec fields of the same (camel) name."""
    prefixes = dict(_METADATA)
    prefixes.update({n: "spec." + camel(n) for n in names})
    prefixes.update(renames)
    return FieldMap(prefixes)


class Value:
    """A field of a document at a path; readers report problems to the Doc."""

    __slots__ = ("doc", "path", "raw")

    def __init__(self, raw: Any, path: str, doc: Doc) -> None:
        self.raw = raw
        self.path = path
        self.doc = doc

    def problem(self, message: str) -> None:
        self.doc.problem(self.path, message)

    @property
    def present(self) -> bool:
        return self.raw is not None

    def __getitem__(self, key: str) -> Value:
        if self.raw is None:
            return Value(None, _join(self.path, key), self.doc)
        if not isinstance(self.raw, Mapping):
            self.problem(f"must be an object, not {_describe(self.raw)}")
            return Value(None, _join(self.path, key), self.doc)
        return Value(self.raw.get(key), _join(self.path, key), self.doc)

    def names(self) -> list[str]:
        return [str(k) for k in self.raw] if isinstance(self.raw, Mapping) else []

    def only_keys(self, allowed: Sequence[str]) -> None:
        """Reject fields we do not know: for kinds where a typo would widen a policy."""
        for key in self.names():
            if key not in allowed:
                self[key].problem("unknown or unsupported field")

    def items(self) -> list[Value]:
        if self.raw is None:
            return []
        if not isinstance(self.raw, list):
            self.problem(f"must be a list, not {_describe(self.raw)}")
            return []
        return [Value(v, f"{self.path}[{i}]", self.doc) for i, v in enumerate(self.raw)]

    # ------------------------------------------------------------ scalars
    def _typed(self, types: tuple[type, ...], what: str) -> Any:
        """The raw value if it has one of ``types`` (a YAML ``true`` is no integer)."""
        if self.raw is None:
            return None
        if not isinstance(self.raw, types) or (isinstance(self.raw, bool) and bool not in types):
            self.problem(f"must be {what}, not {_describe(self.raw)}")
            return None
        return self.raw

    def text(self) -> str | None:
        value: str | None = self._typed((str,), "a string")
        return value

    def required_text(self) -> str:
        """A required string; "" (with a problem noted) when missing or empty."""
        if self.raw is None or self.raw == "":
            self.problem("required")
            return ""
        return self.text() or ""

    def integer(self) -> int | None:
        value: int | None = self._typed((int,), "an integer")
        return value

    def number(self) -> float | None:
        value: float | None = self._typed((int, float), "a number")
        return value

    def flag(self, default: bool = False) -> bool:
        value: bool | None = self._typed((bool,), "true or false")
        return default if value is None else value

    def choice(self, options: Sequence[str], default: str | None = None) -> str | None:
        """One of ``options``, spelled exactly as the API spells it."""
        value = self.text()
        if value is None:
            return default
        if value not in options:
            self.problem(f"must be one of {', '.join(options)}, not {value!r}")
            return default
        return value

    def str_list(self) -> list[str]:
        return [s for s in (v.text() for v in self.items()) if s is not None]

    def str_map(self) -> dict[str, str]:
        """A string → string map such as labels (YAML ``version: 1`` is an int, so wrong)."""
        if self.raw is None:
            return {}
        if not isinstance(self.raw, Mapping):
            self.problem(f"must be a map of strings, not {_describe(self.raw)}")
            return {}
        out: dict[str, str] = {}
        for key, value in self.raw.items():
            if not isinstance(key, str) or not isinstance(value, str):
                Value(value, f"{self.path}[{key!r}]", self.doc).problem(
                    f"keys and values must be strings, not {_describe(value)}"
                )
            else:
                out[key] = value
        return out

    # ------------------------------------------------------------ network values
    def port(self, *, required: bool = False) -> int | None:
        if self.raw is None:
            if required:
                self.problem("required")
            return None
        value = self.integer()
        if value is not None and not 1 <= value <= 65535:
            self.problem(f"not a port number (1-65535): {value}")
            return None
        return value

    def ip(self) -> IPAddress | None:
        text = self.text()
        if text is None:
            return None
        try:
            return ipaddress.ip_address(text.strip())
        except ValueError:
            self.problem(f"not an IP address: {text!r}")
            return None

    def cidr(self) -> IPNetwork | None:
        """A CIDR; host bits are allowed, as the API server's sloppy parser allows them."""
        text = self.text()
        if text is None:
            return None
        try:
            return ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            self.problem(f"not a CIDR: {text!r}")
            return None

    def ips(self) -> list[IPAddress]:
        return [a for a in (v.ip() for v in self.items()) if a is not None]

    def cidrs(self) -> list[IPNetwork]:
        return [n for n in (v.cidr() for v in self.items()) if n is not None]
