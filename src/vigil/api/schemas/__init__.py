"""Request and response shapes of the API (pydantic) and its one error shape (RFC 9457)."""
