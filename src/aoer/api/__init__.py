"""The HTTP API: FastAPI app factory, routers, auth, cache, SSE fan-out and metrics."""

from aoer.api.app import api_routers, create_app

__all__ = ["api_routers", "create_app"]
