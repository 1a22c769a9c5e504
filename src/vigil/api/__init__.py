"""The node's HTTP API (FastAPI): hashing, matching, banks, principals, audit.

Interfaces stay thin: routers validate and authorise, then call the domain (``Banks``,
``Matcher``), the node (``vigil.node``) and the audit log (``vigil.audit``).
``create_asgi()`` is the factory ``vigil serve``'s workers call (``create_app()`` and
the lean match path in front of it).
"""

from vigil.api.app import create_app, create_asgi

__all__ = ["create_app", "create_asgi"]
