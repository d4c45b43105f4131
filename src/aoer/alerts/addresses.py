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
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to its destination, if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1
    if address.sixtofour is not None:
        return address.sixtofour  # 2002:7f00:1::
    if address in NAT64 or (address in IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)  # 64:ff9b::a9fe:a9fe, ::127.0.0.1
    return None


def _numeric_address(name: str) -> IPAddress | None:
    """`name` as the address a resolver reads it as without asking DNS (inet_aton's forms
    included: `127.1`, `0x7f.1`, `2130706433`); None for a name."""
    try:
        return ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except (OSError, ValueError):  # not an address; ValueError: a NUL in it
        return None


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
        """Why a webhook may not go to `address`; None when it may. An IPv6 address that
        carries an IPv4 one (mapped, NAT64, 6to4, IPv4-compatible) is judged by that one:
        it is where the packets end up."""
        embedded = _embedded_ipv4(address)
        judged = embedded or address
        if any(judged in network for network in self.allowed):
            return None
        if judged.is_global and not judged.is_multicast:
            return None
        shown = f"{address}" if embedded is None else f"{address} ({embedded})"
        return (
            f"{shown} is {_kind(judged)}: an organisation's webhook may reach only public"
            f" addresses and the networks in {SETTING}"
        )

    def check_url_host(self, host: str) -> None:
        """Refuse an endpoint whose host is, as written, an address the policy refuses: in
        any notation the resolver reads as one (`127.1`, `0x7f.1`, `2130706433`), or
        `localhost` unless loopback is allowed."""
        name = host.strip("[]").lower().rstrip(".")
        if (name == "localhost" or name.endswith(".localhost")) and self.refusal(
            ipaddress.ip_address("127.0.0.1")
        ):
            raise InvalidInput(
                f"endpoint url points at {host}, this machine: an organisation's webhook may"
                f" reach only public addresses and the networks in {SETTING}"
            )
        address = _numeric_address(name)
        if address is None:
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
