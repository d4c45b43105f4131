"""The HTTP API: FastAPI app factory, routers, auth, cache, SSE fan-out and metrics."""

from aoer.api.app import create_app, default_routers

__all__ = ["create_app", "default_routers"]
