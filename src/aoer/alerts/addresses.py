"""Where an organisation's webhooks may go: public addresses, and the networks the operator
allows (`AOER_WEBHOOK_ALLOWED_NETWORKS`).

An organisation (an agency, a dealer group) registers its own endpoint URLs and can send them
a test ping whose answer it reads back. Without a check, that is a probe of the service's own
network: `http://127.0.0.1:5432/`, a cloud's metadata address `169.254.169.254`, an internal
admin page on `10.0.0.7`. So an organisation's endpoint is refused when its host is such an
address written out (at creation), and every delivery and ping to it resolves the name
itself, keeps only the addresses the policy allows and connects to one of those: a name that
resolves to a private address, at once or only later (DNS rebinding), is never connected to.

An administrator's own endpoints (no organisation) are the operator's, and go anywhere.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore

from aoer.config import Settings
from aoer.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTING = "AOER_WEBHOOK_ALLOWED_NETWORKS"


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    return "not a public address"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus `allowed`."""

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "AddressPolicy":
        return cls(settings.webhook_networks)

    @classmethod
    def for_owner(cls, settings: Settings, org_id: object | None) -> "AddressPolicy | None":
        """The policy an endpoint's webhooks go under: its organisation's, or none (an
        administrator's own endpoint)."""
        return None if org_id is None else cls.from_settings(settings)

    def refusal(self, address: IPAddress) -> str | None:
        """Why a webhook may not go to `address`; None when it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        if any(address in network for network in self.allowed):
            return None
        if address.is_global and not address.is_multicast:
            return None
        return (
            f"{address} is {_kind(address)}: an organisation's webhook may reach only public"
            f" addresses and the networks in {SETTING}"
        )

    def check_url_host(self, host: str) -> None:
        """Refuse an endpoint whose host is, as written, an address the policy refuses."""
        name = host.strip("[]").lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            raise InvalidInput(
                f"endpoint url points at {host}, this machine: an organisation's webhook may"
                f" reach only public addresses and the networks in {SETTING}"
            )
        try:
            address = ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            return  # a name: checked against what it resolves to at each delivery
        reason = self.refusal(address)
        if reason is not None:
            raise InvalidInput(f"endpoint url refused: {reason}")


class AddressRefused(httpcore.ConnectError):
    """No address of the host is one the policy allows; nothing was connected to."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving each host itself and connecting only to the
    addresses its policy allows (TLS still checks the certificate against the URL's name)."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))
        allowed = [a for a in addresses if self.policy.refusal(a) is None]
        if not allowed:
            reasons = [self.policy.refusal(a) for a in addresses]
            raise AddressRefused(f"not sent to {host}: {reasons[0] if reasons else 'no address'}")
        last: Exception | None = None
        for address in allowed:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("an organisation's webhook is not sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
