"""The node's HTTP API (FastAPI): hashing, matching, banks, principals, audit.

Interfaces stay thin: routers validate and authorise, then call the domain (``Banks``,
``Matcher``), the node (``vigil.node``) and the audit log (``vigil.audit``).
``create_app()`` is the factory uvicorn's workers call.
"""

from vigil.api.app import create_app

__all__ = ["create_app"]
