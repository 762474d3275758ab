"""Errors the lab raises (spec errors live with the spec)."""

from __future__ import annotations


class LabError(RuntimeError):
    """The lab could not do what was asked: a build step, a helper or a request failed."""
