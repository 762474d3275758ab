"""The one error tree of `dataplane`.

Every error the library raises on purpose derives from :class:`DataplaneError`;
backends translate errno values, restore failures and HRESULTs into this tree
at their boundary (always ``raise ... from exc``), so an embedding agent never
has to know which backend it runs on to handle a failure::

    DataplaneError
    ├── ValidationError            bad input; nothing was applied
    │   ├── SelectorError          a selector that does not parse (with column)
    │   └── ManifestError          a Kubernetes/Calico document we cannot convert
    ├── ConfigError                a DataplaneConfig that cannot work
    │   └── UnknownBackendError    no backend registered under that name
    └── BackendError               the kernel (or HNS) refused or failed
        ├── BackendUnavailableError   a kernel feature is missing (names it)
        ├── CapacityError             desired state exceeds a map/rule limit
        └── TransientBackendError     worth retrying (busy lock, HNS restart)

Validation errors carry every problem found in one pass (like cattrs), each
naming the object (``Service default/web``) and the field path
(``ports[0].port``), because a node agent fixing its input wants the whole
list at once, not one error per round trip.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "CapacityError",
    "ConfigError",
    "DataplaneError",
    "ManifestError",
    "Problem",
    "SelectorError",
    "TransientBackendError",
    "UnknownBackendError",
    "ValidationError",
]


class DataplaneError(Exception):
    """Base of every error `dataplane` raises on purpose."""


@attrs.frozen
class Problem:
    """One thing wrong with one field of one object."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ValidationError(DataplaneError, ValueError):
    """Input that cannot be accepted; raised before anything reaches a backend.

    ``obj`` names the object (``"Service default/web"``), ``problems`` lists
    every failing field. ``field`` is the first problem's field, for callers
    that only want one.
    """

    def __init__(self, obj: str, problems: Iterable[Problem]) -> None:
        self.obj = obj
        self.problems = tuple(problems)
        if not self.problems:
            raise ValueError("ValidationError needs at least one problem")
        self.field = self.problems[0].field
        lines = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{obj}: {lines}")

    @classmethod
    def single(cls, obj: str, field: str, message: str) -> ValidationError:
        return cls(obj, [Problem(field, message)])


class SelectorError(ValidationError):
    """A label selector that does not parse; ``column`` is a 0-based offset."""

    def __init__(self, selector: str, column: int, reason: str) -> None:
        self.selector = selector
        self.column = column
        self.reason = reason
        caret = " " * column + "^"
        super().__init__(
            "selector",
            [Problem("", f"{reason} at column {column}\n    {selector}\n    {caret}")],
        )


class ManifestError(ValidationError):
    """A Kubernetes or Calico document that cannot be converted to the model."""


class ConfigError(DataplaneError, ValueError):
    """A configuration that cannot work (bad option, wrong platform)."""


class UnknownBackendError(ConfigError):
    """No backend is registered under the requested name."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(f"unknown backend {name!r}; known backends: {', '.join(self.known)}")


class BackendError(DataplaneError):
    """The kernel (or HNS) failed or refused an operation."""


class BackendUnavailableError(BackendError):
    """The backend cannot run here; the message names the missing feature."""


class CapacityError(BackendError):
    """Desired state exceeds a limit of the backend (map size, rule count)."""


class TransientBackendError(BackendError):
    """A failure worth retrying as is (a held lock, a restarting service)."""
