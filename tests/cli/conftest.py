"""The running test node (`vigil serve`, tests/api/conftest.py) for CLI tests that need a
peer to talk to."""

from tests.api.conftest import node

__all__ = ["node"]
