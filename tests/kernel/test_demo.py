"""`make demo` end to end: real lab, the default kernel backend, every probe as expected."""

from __future__ import annotations

import io
import os

import pytest

from dataplane.demo import run

pytestmark = pytest.mark.kernel


@pytest.mark.skipif(os.geteuid() != 0, reason="the demo's lab needs root")
def test_demo_runs_real_traffic_and_agrees_with_the_reference() -> None:
    out = io.StringIO()
    code = run(out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "MISMATCH" not in text
    assert text.count(" ok") >= 4, text  # at least the service probes ran for real
