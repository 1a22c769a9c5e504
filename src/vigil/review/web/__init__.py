"""The reviewer's web app (``create_review_app``) and its one-call factory (``review_app``)."""

from vigil.review.web.app import CSP, create_review_app
from vigil.review.web.factory import review_app, scheme_for

__all__ = ["CSP", "create_review_app", "review_app", "scheme_for"]
