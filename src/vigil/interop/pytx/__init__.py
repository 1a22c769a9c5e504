"""Vigil as a python-threatexchange extension (``pip install 'vigil[pytx]'``).

    threatexchange config extensions add vigil.interop.pytx

registers the ``vigil`` exchange (``vigil.interop.pytx.exchange``) and the ``vigil_vpdq``
signal type (``vigil.interop.pytx.vpdq``) with pytx's CLI; HMA loads the same manifest
(docs/interop.md). No ``from __future__ import annotations`` in this package: pytx reads
its classes' annotations at run time.
"""

from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest

from vigil.interop.pytx.exchange import VigilSignalExchangeAPI
from vigil.interop.pytx.vpdq import VigilVpdqSignal

TX_MANIFEST = ThreatExchangeExtensionManifest(
    signal_types=(VigilVpdqSignal,),
    apis=(VigilSignalExchangeAPI,),
)

__all__ = ["TX_MANIFEST", "VigilSignalExchangeAPI", "VigilVpdqSignal"]
