"""The live dashboard: server-rendered pages, inline-SVG charts, updates over the API's SSE."""

from fastapi import APIRouter

from aoer.dashboard import routes, session


def dashboard_routers() -> list[APIRouter]:
    """The pages, their assets and the browser sign-in (`/login`)."""
    return [routes.router, session.router]


__all__ = ["dashboard_routers"]
