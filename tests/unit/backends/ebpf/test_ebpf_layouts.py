"""The shipped object and the Python map layouts agree (BTF check), and are not stale."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import attrs
import pytest

from dataplane.backends.ebpf import _libbpf, maps
from dataplane.backends.ebpf.loader import OBJECT, PROGRAMS
from dataplane.backends.ebpf.maps import frontend
from dataplane.errors import BackendError

pytestmark = pytest.mark.skipif(
    _libbpf.library_problem() is not None, reason=str(_libbpf.library_problem())
)
BPF_DIR = Path(__file__).resolve().parents[4] / "bpf"


@pytest.fixture
def obj(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = _libbpf.BpfObject(OBJECT, tmp_path)  # opening parses ELF/BTF only: no root
    yield opened
    opened.close()


def test_every_map_matches_its_python_layout(obj: _libbpf.BpfObject) -> None:
    maps.check_layouts(obj)


def test_layouts_are_checked_field_by_field(obj: _libbpf.BpfObject, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Swapped(ctypes.Structure):  # same size, fields in the wrong order
        _fields_ = [
            ("port", ctypes.c_uint16),
            ("proto", ctypes.c_uint8),
            ("src_class", ctypes.c_uint8),
            ("addr", ctypes.c_uint32),
        ]

    bad = attrs.evolve(frontend.SPEC, key=Swapped)
    monkeypatch.setattr(maps, "ALL", (bad,))
    with pytest.raises(BackendError, match="struct dp_fe_key differs"):
        maps.check_layouts(obj)


def test_map_type_names_come_from_btf(obj: _libbpf.BpfObject) -> None:
    assert obj.map_type_names("dp_ct") == ("dp_ct_key", "dp_ct_value")
    assert obj.map_type_names("dp_counters") == ("__u32", "dp_counter")


def test_object_holds_every_program(obj: _libbpf.BpfObject) -> None:
    assert obj.struct_layout("dp_config").size == 48
    assert set(PROGRAMS) == {"dp_from_wep", "dp_to_wep", "dp_from_hep", "dp_to_hep", "dp_from_tun"}


@pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("make") is None, reason="clang/make not installed"
)
def test_shipped_object_is_up_to_date() -> None:
    result = subprocess.run(
        ["make", "-s", "-C", str(BPF_DIR), "check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
