"""The ``dataplane`` command."""
