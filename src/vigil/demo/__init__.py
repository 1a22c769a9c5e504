"""``make demo``: a benign generated seizure and bank, scanned end to end (``build``).

``synthetic`` makes the benign pictures the demo (and the tests) use: Vigil never needs
real material to be built, tested or shown.
"""

from vigil.demo.build import main

__all__ = ["main"]
