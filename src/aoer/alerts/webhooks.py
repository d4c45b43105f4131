"""Webhooks signed per the Standard Webhooks spec (the maintained `standardwebhooks` package).

Headers: `webhook-id` (the delivery's id, the same on every retry, so receivers deduplicate),
`webhook-timestamp` (seconds, the time of this attempt) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of id.timestamp.body>`). 2xx means delivered; anything else, or no
whole answer within the timeout, is a failed attempt. The timeout bounds the whole attempt,
not each read: a receiver trickling its answer a byte at a time cannot hold an attempt past
its delivery's lease (and have it sent again meanwhile). Of the answer's body only the first
`MAX_ANSWER_BYTES` are read (an error's text): an endless body costs nothing.
"""

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpcore
import httpx
from standardwebhooks.webhooks import Webhook

from aoer import __version__
from aoer.alerts.addresses import AddressPolicy, AddressRefused, GuardedBackend
from aoer.alerts.wording import dealership_page, headline
from aoer.constants import ALERT_EVENT_PREFIX

MAX_ERROR_CHARS = 300
MAX_ANSWER_BYTES = 4096  # read of a receiver's answer, for the error's text
USER_AGENT = f"aoer-alerts/{__version__}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one delivery attempt achieved."""

    ok: bool
    status_code: int | None = None
    error: str | None = None


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, default=_json_default, separators=(",", ":"), sort_keys=True)


def alert_body(
    kind: str, timestamp: datetime, data: dict[str, Any], *, dashboard_url: str | None = None
) -> str:
    """The body of an alert's webhook (DESIGN §13), with `message`, the alert in one line a
    person reads, and with `dashboard_url` (AOER_PUBLIC_URL) `url`, the dealership's page;
    the same bytes on every retry."""
    body = {
        "type": ALERT_EVENT_PREFIX + kind,
        "timestamp": timestamp.isoformat(),
        "message": headline(kind, data),
        "data": data,
    }
    page = dealership_page(dashboard_url, data)
    if page is not None:
        body["url"] = page
    return encode(body)


def ping_body(endpoint_id: str) -> str:
    return encode(
        {
            "type": "ping",
            "timestamp": datetime.now(UTC).isoformat(),
            "data": {"endpointId": endpoint_id, "message": "AOER alert endpoint test"},
        }
    )


def signed_headers(
    secret: str, msg_id: str, body: str, now: datetime | None = None
) -> dict[str, str]:
    sent_at = now or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id=msg_id, timestamp=sent_at, data=body),
    }


async def post(
    client: httpx.AsyncClient, url: str, secret: str, msg_id: str, body: str, timeout_s: float
) -> Attempt:
    """POST one signed webhook, the whole attempt within `timeout_s`; never raises for the
    receiver's failures."""
    headers = signed_headers(secret, msg_id, body)
    try:
        async with asyncio.timeout(timeout_s):
            return await _post(client, url, headers, body)
    except TimeoutError:
        return Attempt(False, None, f"timed out: no whole answer within {timeout_s:g} s")


async def _post(client: httpx.AsyncClient, url: str, headers: dict[str, str], body: str) -> Attempt:
    try:
        async with client.stream("POST", url, content=body.encode(), headers=headers) as response:
            if 200 <= response.status_code < 300:
                return Attempt(True, response.status_code)
            answer = await _first_bytes(response, MAX_ANSWER_BYTES)
    except httpx.TimeoutException as exc:
        return Attempt(False, None, f"timed out: {type(exc).__name__}")
    except httpx.ConnectError as exc:
        if isinstance(exc.__cause__, AddressRefused):
            return Attempt(False, None, str(exc.__cause__)[:MAX_ERROR_CHARS])
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    except httpx.HTTPError as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    text = answer.decode("utf-8", "replace")[:MAX_ERROR_CHARS].strip()
    return Attempt(False, response.status_code, f"HTTP {response.status_code} {text}".strip())


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the body; the rest is never read (the connection is closed)."""
    got = bytearray()
    async for chunk in response.aiter_bytes():
        got += chunk
        if len(got) >= limit:
            break
    return bytes(got[:limit])


def client(
    timeout_s: float, max_connections: int, policy: AddressPolicy | None = None
) -> httpx.AsyncClient:
    """An HTTP client for deliveries: bounded time per request and connections per process,
    no redirects followed (a receiver answers 2xx itself). With a `policy` (an organisation's
    endpoints), it connects only to the addresses the policy allows, and directly: the
    environment's proxy settings are not read, so no proxy connects for it elsewhere."""
    limits = httpx.Limits(max_connections=max_connections)
    transport = None if policy is None else _guarded_transport(policy, limits)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=limits,
        follow_redirects=False,
        transport=transport,
    )


def _guarded_transport(policy: AddressPolicy, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx takes no network backend, so its pool is made again, as httpx makes it, with
    # ours (httpcore's public API). tests/api/test_webhook_addresses.py fails if it stops applying.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy, httpcore.AnyIOBackend()),
    )
    return transport


async def ping(
    url: str,
    secret: str,
    endpoint_id: str,
    timeout_s: float,
    policy: AddressPolicy | None = None,
) -> tuple[str, Attempt]:
    """Send a signed `ping` to an endpoint now; its webhook-id and what came back. An
    organisation's endpoint is pinged under `policy`, as its deliveries are sent."""
    msg_id = f"ping_{uuid.uuid4().hex}"
    async with client(timeout_s, 1, policy) as http:
        attempt = await post(http, url, secret, msg_id, ping_body(endpoint_id), timeout_s)
    return msg_id, attempt
