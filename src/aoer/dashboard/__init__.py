"""The live dashboard: server-rendered pages, inline-SVG charts, updates over the API's SSE."""

from fastapi import APIRouter

from aoer.dashboard import console, routes, session


def dashboard_routers() -> list[APIRouter]:
    """The pages, their assets and the browser sign-in (`/login`)."""
    return [routes.router, console.router, session.router]


__all__ = ["dashboard_routers"]
