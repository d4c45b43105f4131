"""An organisation's webhooks reach only public addresses and the operator's allowed networks
(alerts/addresses.py): refused at creation when the URL names such an address, and never
connected to at delivery or ping, whatever the name resolves to. An administrator's own
endpoints go anywhere."""

from ipaddress import ip_address, ip_network
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from aoer.alerts.addresses import AddressPolicy
from aoer.alerts.delivery import Deliverer
from aoer.config import Settings
from aoer.db.pool import Connection
from aoer.store import Store
from tests.alerts.conftest import Receiver, receiver  # noqa: F401 (the fixture)
from tests.alerts.test_delivery import WORKER, endpoint_row, fleet_crossing_risk, policy
from tests.api.conftest import ApiFactory, count
from tests.api.test_alerts_api import act_as_org, new_org, post

LOOPBACK = AddressPolicy((ip_network("127.0.0.0/8"),))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.5", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "not a public address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
    ],
)
def test_addresses_that_are_not_public_are_refused_by_name(address: str, kind: str) -> None:
    reason = AddressPolicy().refusal(ip_address(address))
    assert reason is not None
    assert reason.endswith(
        f" is {kind}: an organisation's webhook may reach only public addresses and the"
        " networks in AOER_WEBHOOK_ALLOWED_NETWORKS"
    )


def test_public_addresses_and_allowed_networks_pass() -> None:
    assert AddressPolicy().refusal(ip_address("93.184.216.34")) is None
    assert AddressPolicy().refusal(ip_address("2606:4700::1111")) is None
    allowed = AddressPolicy((ip_network("10.1.0.0/16"), ip_network("::1/128")))
    assert allowed.refusal(ip_address("10.1.2.3")) is None
    assert allowed.refusal(ip_address("::1")) is None
    assert allowed.refusal(ip_address("10.2.0.1")) is not None
    # An IPv6 address carrying an IPv4 one is judged by where its packets end up.
    assert AddressPolicy().refusal(ip_address("64:ff9b::808:808")) is None  # 8.8.8.8
    assert allowed.refusal(ip_address("::ffff:10.1.2.3")) is None
    assert AddressPolicy().refusal(ip_address("2002:a9fe:a9fe::")) is not None


def test_the_allowed_networks_setting_is_read_and_a_bad_entry_is_named() -> None:
    settings = Settings(AOER_WEBHOOK_ALLOWED_NETWORKS="10.1.0.0/16, 192.168.7.20")
    assert settings.webhook_networks == (ip_network("10.1.0.0/16"), ip_network("192.168.7.20"))
    with pytest.raises(ValidationError, match=r"'10\.1\.0\.0/33' is not an address or a network"):
        Settings(AOER_WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8,10.1.0.0/33")


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:5432/", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[::1]:8080/hook", "::1 is a loopback address"),
        ("http://10.0.0.7/admin", "10.0.0.7 is a private address"),
        ("http://localhost:9/h", "points at localhost, this machine"),
        ("http://api.localhost/h", "points at api.localhost, this machine"),
        # What a resolver reads as an address without DNS, in any notation (review)
        ("http://2130706433/", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1/", "127.0.0.1 is a loopback address"),
        ("http://127.1:8080/", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:10.0.0.7]/", "::ffff:a00:7 (10.0.0.7) is a private address"),
        ("http://[64:ff9b::a9fe:a9fe]/", "(169.254.169.254) is a link-local address"),
    ],
)
async def test_an_organisation_cannot_register_a_private_address(
    make_api: ApiFactory, conn: Connection, url: str, named: str
) -> None:
    api = await make_api()
    org = await new_org(conn, "Agency")
    act_as_org(api, org)
    refused = await post(api, "/api/alerts/endpoints", {"url": url})
    assert refused.status_code == 400
    assert named in refused.json()["error"]
    assert await count(conn, "alert_endpoints") == 0
    assert await count(conn, "audit_log") == 0
    public = await post(api, "/api/alerts/endpoints", {"url": "https://hooks.example.com/x"})
    assert public.status_code == 201, public.text


async def test_the_operator_registers_internal_addresses_and_allows_networks_for_others(
    make_api: ApiFactory, conn: Connection
) -> None:
    org = await new_org(conn, "Dealer Group")
    api = await make_api()
    own = await post(api, "/api/alerts/endpoints", {"url": "http://10.0.0.7/hook"})
    assert own.status_code == 201, "an administrator's own endpoint goes anywhere"
    for_org = await post(
        api, "/api/alerts/endpoints", {"url": "http://10.0.0.7/hook", "orgId": str(org)}
    )
    assert for_org.status_code == 400
    assert "10.0.0.7 is a private address" in for_org.json()["error"]
    allowing = await make_api(AOER_WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/24,127.0.0.0/8")
    act_as_org(allowing, org)
    allowed = await post(allowing, "/api/alerts/endpoints", {"url": "http://10.0.0.7/hook"})
    assert allowed.status_code == 201, allowed.text
    local = await post(allowing, "/api/alerts/endpoints", {"url": "http://localhost:8799/h"})
    assert local.status_code == 201, "localhost, once loopback is allowed (review)"


async def org_endpoint(conn: Connection, url: str, secret: str) -> tuple[UUID, UUID]:
    """An organisation's endpoint written as it stood before the check (or pointing at a name
    that now resolves elsewhere): the organisation and the endpoint."""
    org = await new_org(conn, "Probe Agency")
    return org, await endpoint_row(conn, org, url, secret)


async def test_an_organisations_ping_never_reaches_a_private_address(
    make_api: ApiFactory,
    conn: Connection,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
) -> None:
    receiver.start()
    org, endpoint = await org_endpoint(conn, receiver.url, receiver.secret)
    api = await make_api()
    act_as_org(api, org)
    answer = (await api.client.post(f"/api/alerts/endpoints/{endpoint}/test")).json()
    assert answer["delivered"] is False
    assert answer["statusCode"] is None
    assert answer["error"].startswith("not sent to 127.0.0.1: 127.0.0.1 is a loopback address")
    assert receiver.records() == [], "nothing was connected to"
    allowing = await make_api(AOER_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1")
    act_as_org(allowing, org)
    allowed = (await allowing.client.post(f"/api/alerts/endpoints/{endpoint}/test")).json()
    assert (allowed["delivered"], allowed["statusCode"]) == (True, 200)
    [received] = receiver.records()
    assert received["verified"] is True, "the signature holds through our own connection"


async def delivery(conn: Connection) -> dict[str, Any]:
    cur = await conn.execute("SELECT status, attempts, last_error FROM alert_deliveries")
    [row] = await cur.fetchall()
    return dict(row)


async def test_a_delivery_to_a_name_that_resolves_to_loopback_is_not_sent(
    conn: Connection,
    store: Store,
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
) -> None:
    """The endpoint names `localhost`, not an address: only resolving it at delivery shows
    where it goes. Allowed, the same delivery is sent; so is an administrator's endpoint."""
    receiver.start()
    by_name = receiver.url.replace("127.0.0.1", "localhost")
    assert AddressPolicy().refusal(ip_address("127.0.0.1")) is not None
    await fleet_crossing_risk(conn, 1, url=by_name, secret=receiver.secret, emails=[])
    stats = await Deliverer(store, policy(addresses=AddressPolicy()), WORKER).drain()
    assert (stats.delivered, stats.retried) == (0, 1)
    refused = await delivery(conn)
    assert refused["status"] == "pending", "retried: the operator may yet allow the network"
    assert refused["last_error"].startswith("not sent to localhost: ")
    assert "is a loopback address" in refused["last_error"]
    assert receiver.records() == []

    await conn.execute("UPDATE alert_deliveries SET next_attempt_at = now()")
    stats = await Deliverer(store, policy(addresses=LOOPBACK), WORKER).drain()
    assert stats.delivered == 1
    assert (await delivery(conn))["status"] == "delivered"
    assert len(receiver.delivered_ids()) == 1

    await conn.execute(
        "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = now();"
        "UPDATE alert_endpoints SET org_id = NULL"
    )
    stats = await Deliverer(store, policy(addresses=AddressPolicy()), WORKER).drain()
    assert stats.delivered == 1, "an administrator's own endpoint is not under the policy"
    assert len(receiver.delivered_ids()) == 2
