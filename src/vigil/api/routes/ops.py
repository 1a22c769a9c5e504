"""Operations endpoints, unauthenticated: liveness, readiness, Prometheus metrics.

They disclose no bank content: readiness says whether the index is loaded and current,
metrics give counts, sizes and latencies by route template.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from vigil.api.runtime import metrics
from vigil.api.schemas.models import Health, Ready

router = APIRouter(tags=["operations"])
#: Ready means: the last sync succeeded recently and nothing older than one interval waits.
MAX_SYNC_AGE = 5.0


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, summary="The index is loaded and current",
            responses={503: {"model": Ready, "description": "not ready (lagging or failing)"}})
def readyz(request: Request) -> JSONResponse:
    st = request.app.state.node.index.status()
    ok = st["error"] is None and st["lag_seconds"] <= MAX_SYNC_AGE and (
        st["lag_changes"] == 0 or st["lag_seconds"] <= request.app.state.node.settings.
        sync_interval * 2)
    body = Ready(status="ready" if ok else "not ready", **st)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def prometheus(request: Request) -> Response:
    st = request.app.state.node.index.status()
    for t, n in st["sizes"].items():
        metrics.INDEX_SIZE.labels(t).set(n)
    metrics.INDEX_LAG.set(st["lag_changes"])
    metrics.INDEX_AGE.set(st["lag_seconds"])
    data, ctype = metrics.render()
    return Response(data, media_type=ctype)
