"""Vigil: pool hashes, labels and coordination records across agencies — never the material."""

__version__ = "0.1.0"
