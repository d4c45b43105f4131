"""Cross-site request refusal: a cookie-carrying request that changes state must come from
this site's own pages.

Browsers attach the session cookie to requests that other sites trigger (a form on any
page, and every port on 127.0.0.1 counts as the same *site*), so such requests prove where
they come from: `Sec-Fetch-Site: same-origin`, or else an `Origin` whose host is the one the
request was sent to. A request with neither header proves nothing and is refused too; scripts
authenticate with `Authorization: Bearer`, which no other site can make a browser send.
"""

import logging
from typing import Final
from urllib.parse import urlsplit

from fastapi import Request

from aoer.api.errors import Forbidden

logger = logging.getLogger(__name__)

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE_MESSAGE: Final = (
    "cross-site request refused: a request that changes something with the session cookie "
    "must come from this dashboard's own pages (Origin / Sec-Fetch-Site); scripts send "
    "Authorization: Bearer <token> instead"
)


def same_origin(request: Request) -> bool:
    """Whether the browser says this request comes from a page of this very origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or origin == "null" or not host:
        return False
    # Host and port only, as the Host header has them: behind a TLS-terminating proxy the
    # app sees http while the browser's Origin says https.
    return urlsplit(origin).netloc.lower() == host.lower()


def ensure_same_origin(request: Request, message: str = CROSS_SITE_MESSAGE) -> None:
    """403 unless the request comes from this origin's own pages."""
    if same_origin(request):
        return
    logger.warning(
        "refused a cross-site %s %s (Origin %s, Sec-Fetch-Site %s)",
        request.method,
        request.url.path,
        request.headers.get("origin", "-"),
        request.headers.get("sec-fetch-site", "-"),
        extra={"action": "cross_site_refused"},
    )
    raise Forbidden(message)
