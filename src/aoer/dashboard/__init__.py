"""The live dashboard: server-rendered pages, inline-SVG charts, updates over the API's SSE."""

from fastapi import APIRouter

from aoer.dashboard import console, keys, routes, session
from aoer.dashboard.render import install_page_errors


def dashboard_routers() -> list[APIRouter]:
    """The pages, their assets, the operator console, the API-key page and the browser
    sign-in (`/login`)."""
    return [routes.router, console.router, keys.router, session.router]


__all__ = ["dashboard_routers", "install_page_errors"]
