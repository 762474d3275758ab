"""Test-suite wiring: the lab fixtures for kernel tests."""

pytest_plugins = ["dataplane.lab.pytest_plugin"]
