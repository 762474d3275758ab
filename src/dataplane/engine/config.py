"""DataplaneConfig: how the engine and its backend are set up.

Three sources, lowest precedence first: a TOML file, ``DATAPLANE_*``
environment variables, keyword arguments. Nothing here imports a backend.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dataplane.errors import ConfigError

ENV_PREFIX = "DATAPLANE_"
_INSTANCE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")


def _default_node() -> str:
    return socket.gethostname()


def _freeze(options: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(options or {})


@attrs.frozen
class DataplaneConfig:
    """Configuration of one :class:`~dataplane.Dataplane` instance.

    ``netns`` programs a named network namespace instead of the caller's own.
    ``instance`` names this instance's kernel objects (chains, pins); the
    default is derived from node and netns, so a restarted agent finds its own.
    ``options`` holds backend-specific settings (e.g. ``iptables_flavour``).
    """

    backend: str = "auto"
    node_name: str = attrs.field(factory=_default_node)
    netns: str | None = None
    instance: str | None = None
    resync_period: float = 90.0  # seconds; 0 disables the periodic full resync
    retry_initial: float = 0.1
    retry_max: float = 30.0
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_freeze)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.backend, str) or not self.backend:
            raise ConfigError(f"backend must be a name, not {self.backend!r}")
        if self.instance is not None and not _INSTANCE_RE.match(self.instance):
            raise ConfigError(
                f"instance {self.instance!r} must be 1-24 of [a-z0-9-], starting alphanumeric"
            )
        if self.resync_period < 0 or self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ConfigError("resync_period >= 0 and 0 < retry_initial <= retry_max required")

    @property
    def instance_name(self) -> str:
        """The name kernel objects of this instance carry (stable across restarts)."""
        if self.instance:
            return self.instance
        ident = f"{self.node_name}|{self.netns or ''}".encode()
        return "dp-" + hashlib.sha256(ident).hexdigest()[:8]

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DataplaneConfig:
        """Settings from ``DATAPLANE_CONFIG`` (a TOML file), then ``DATAPLANE_*``, then kwargs."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(ENV_PREFIX + "CONFIG"):
            values.update(_read_toml(Path(env[ENV_PREFIX + "CONFIG"])))
        for field in attrs.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None and field.name != "options":
                values[field.name] = _parse_env(field.name, raw)
        values.update(overrides)
        return cls.from_mapping(values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> DataplaneConfig:
        values = _read_toml(Path(path))
        values.update(overrides)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DataplaneConfig:
        known = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(str(exc)) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc
    section = data.get("dataplane", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [dataplane] must be a table")
    return dict(section)


def _parse_env(name: str, raw: str) -> Any:
    if name in ("resync_period", "retry_initial", "retry_max"):
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from exc
    return raw or None
