"""`aoer alerts rules|endpoints|list|test` as a user runs them (real subprocesses)."""

import json

import psycopg
import pytest

from tests.acceptance.conftest import AoerCli
from tests.alerts.conftest import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_the_alerts_commands_manage_rules_and_endpoints_and_ping(
    aoer: AoerCli, db_url: str, receiver: Receiver
) -> None:
    receiver.start()
    with psycopg.connect(db_url, autocommit=True) as conn:
        tenant = conn.execute("INSERT INTO tenants (name) VALUES ('Cli Motors') RETURNING id")
        tenant_id = str(tenant.fetchone()[0])  # type: ignore[index]

    added = aoer("alerts", "endpoints", "add", receiver.url, "--secret", receiver.secret, "--json")
    assert added.returncode == 0, added.stderr
    endpoint = json.loads(added.stdout)
    assert endpoint["secret"] == receiver.secret

    bad = aoer("alerts", "endpoints", "add", "ftp://example.com/x")
    assert bad.returncode == 1
    assert "http:// or https://" in bad.stderr

    rule = aoer(
        "alerts", "rules", "add", "score_drop", "--tenant", tenant_id, "--points", "5",
        "--days", "7", "--endpoint", endpoint["id"], "--email", "ops@example.com",
    )  # fmt: skip
    assert rule.returncode == 0, rule.stderr
    assert "AOER_SMTP_URL is not set here" in rule.stderr  # the e-mails need it, it says
    rule_id = rule.stdout.strip()
    negative = aoer("alerts", "rules", "add", "score_drop", "--tenant", tenant_id, "--points", "-1")
    assert negative.returncode == 1
    assert "points must be positive" in negative.stderr
    unknown = aoer("alerts", "rules", "add", "explodes", "--tenant", tenant_id)
    assert "unknown alert kind 'explodes'" in unknown.stderr

    rules = json.loads(aoer("alerts", "rules", "--json").stdout)["rules"]
    assert [(r["id"], r["kind"], r["points"], r["days"]) for r in rules] == [
        (rule_id, "score_drop", 5.0, 7)
    ]
    table = aoer("alerts", "rules").stdout
    assert table.count(rule_id) == 1  # the table, ids whole
    assert f"tenant Cli Motors ({tenant_id})" in " ".join(table.split()), table
    endpoints = json.loads(aoer("alerts", "endpoints", "--json").stdout)["endpoints"]
    assert [e["id"] for e in endpoints] == [endpoint["id"]]
    assert "secret" not in endpoints[0]

    ping = aoer("alerts", "test", endpoint["id"])
    assert ping.returncode == 0, ping.stderr
    assert "delivered (HTTP 200)" in ping.stdout
    [received] = receiver.records()
    assert received["verified"]
    assert received["payload"]["type"] == "ping"

    assert json.loads(aoer("alerts", "list", "--json").stdout) == {"alerts": [], "nextBefore": None}
    assert aoer("alerts", "rules", "remove", rule_id).returncode == 0
    assert aoer("alerts", "endpoints", "remove", endpoint["id"]).returncode == 0
    with psycopg.connect(db_url) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == [
        "alert_endpoint.create",
        "alert_rule.create",
        "alert_rule.delete",
        "alert_endpoint.delete",
    ]

    plain = aoer("alerts", "endpoints", "add", receiver.url, COLUMNS="80")
    assert plain.returncode == 0, plain.stderr
    # One line, `id<TAB>secret`: the secret, shown only now, is never wrapped away.
    plain_id, secret = plain.stdout.rstrip("\n").split("\t")
    assert (len(plain_id), secret.startswith("whsec_")) == (36, True)


def test_a_rule_watches_one_tenant_or_one_organisation_and_a_tenants_list_shows_both(
    aoer: AoerCli, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        org = str(
            conn.execute("INSERT INTO organizations (name) VALUES ('G') RETURNING id").fetchone()[0]
        )  # type: ignore[index]
        tenant = str(
            conn.execute(
                "INSERT INTO tenants (name, org_id) VALUES ('T', %s) RETURNING id", (org,)
            ).fetchone()[0]
        )  # type: ignore[index]
    for options in ((), ("--tenant", tenant, "--org", org)):
        refused = aoer("alerts", "rules", "add", "grade_down", *options)
        assert refused.returncode == 2, refused.stderr
        assert "give one of --tenant and --org" in refused.stderr
    own = aoer("alerts", "rules", "add", "grade_down", "--tenant", tenant).stdout.strip()
    wide = aoer("alerts", "rules", "add", "risk_level_up", "--org", org).stdout.strip()
    watching = json.loads(aoer("alerts", "rules", "--tenant", tenant, "--json").stdout)["rules"]
    assert {r["id"] for r in watching} == {own, wide}
