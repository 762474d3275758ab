"""Load ``objects/dataplane.o``: check layouts, size maps, set config, reuse pins.

Maps are pinned by name under the instance's pin directory. A pinned map is
reused as it is: its size wins over the configured one (libbpf refuses to
reuse a map whose parameters differ, and resizing would lose conntrack), and
a map whose key or value size changed (an incompatible upgrade) is an error
that names the fix: ``cleanup()`` and start again -- unless the agent rebuilds
the whole map at every full sync (``MapSpec.rebuilt``): that pin is replaced
(programs still attached keep the old map until they are swapped).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataplane.backends.ebpf import _libbpf, maps
from dataplane.backends.ebpf.maps import config
from dataplane.backends.ebpf.maps._map import Map, MapSpec
from dataplane.backends.ebpf.maps.conntrack import Timeouts
from dataplane.errors import BackendError

log = logging.getLogger(__name__)

OBJECT = Path(__file__).parent / "objects" / "dataplane.o"
PROGRAMS = ("dp_from_wep", "dp_to_wep", "dp_from_hep", "dp_to_hep", "dp_from_tun")


class Loaded:
    """A loaded object: typed maps and program fds, valid until :meth:`close`."""

    def __init__(self, obj: _libbpf.BpfObject) -> None:
        self._obj = obj
        ncpus = _libbpf.num_possible_cpus()
        self.maps: dict[str, Map[Any, Any]] = {
            spec.name: Map(spec, obj.map_fd(spec.name), ncpus) for spec in maps.ALL
        }
        self.programs = {name: obj.program_fd(name) for name in PROGRAMS}

    def map(self, spec: MapSpec[Any, Any]) -> Map[Any, Any]:
        return self.maps[spec.name]

    def close(self) -> None:
        self._obj.close()


def load(pin_dir: Path, sizes: Mapping[str, int], timeouts: Timeouts) -> Loaded:
    """Open, check and load the object; maps come from ``pin_dir`` when pinned there."""
    obj = _libbpf.BpfObject(OBJECT, pin_dir)
    try:
        maps.check_layouts(obj)
        for spec in maps.ALL:
            _size(obj, spec, pin_dir / spec.name, sizes)
        obj.set_initial_value(config.SECTION, config.from_timeouts(timeouts))
        obj.load()
        return Loaded(obj)
    except BaseException:
        obj.close()
        raise


def _size(
    obj: _libbpf.BpfObject, spec: MapSpec[Any, Any], pin: Path, sizes: Mapping[str, int]
) -> None:
    wanted = sizes.get(spec.size_option) if spec.size_option else None
    if not pin.exists():
        if wanted:
            obj.set_max_entries(spec.name, int(wanted))
        return
    fd = _libbpf.open_pinned(pin)
    try:
        info = _libbpf.map_info(fd)
    finally:
        _libbpf.close_fd(fd)
    if (info.key_size, info.value_size) != obj.map_sizes(spec.name):
        if spec.rebuilt:
            log.info("%s: replacing a pinned copy with another layout (rebuilt at sync)", pin)
            pin.unlink()
            _size(obj, spec, pin, sizes)
            return
        raise BackendError(
            f"pinned map {pin} has key/value sizes {info.key_size}/{info.value_size}, this "
            f"version needs {obj.map_sizes(spec.name)}: run cleanup() to remove the old state"
        )
    if wanted and int(wanted) != info.max_entries:
        log.warning(
            "%s keeps its pinned size %d (configured %s): resizing would lose its "
            "entries; cleanup() to apply the new size",
            spec.name,
            info.max_entries,
            wanted,
        )
    obj.set_max_entries(spec.name, info.max_entries)
