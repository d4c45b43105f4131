"""A revoked API key is refused by every API process within 5 s (DESIGN §12): two real
`aoer serve` processes, the key revoked through one, refused by the other. Also the CLI side
of organisations and keys as an operator runs it."""

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from uuid import UUID

import pytest

from aoer.api.auth import TokenService
from tests.acceptance.conftest import AoerCli, start_aoer
from tests.acceptance.test_up import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SECRET = "replica-secret-0123456789abcdef-0123456789"
WAIT_S = 60
REVOCATION_BOUND_S = 5.0


def call(port: int, method: str, path: str, credential: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        headers={"Authorization": f"Bearer {credential}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_5_s(
    db_url: str, tmp_path: Path, aoer: AoerCli
) -> None:
    org = aoer("orgs", "add", "Replica Group", AOER_JWT_SECRET=SECRET)
    assert org.returncode == 0, org.stderr
    org_id = org.stdout.split()[0]
    made = aoer("keys", "create", "--org", org_id, "--name", "replicas", "--expires", "30d")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("aoer_")
    listed = json.loads(aoer("keys", "list", "--json").stdout)["keys"]
    assert [(k["orgId"], k["name"], k["state"]) for k in listed] == [(org_id, "replicas", "active")]
    key_id = listed[0]["id"]

    ports = [free_port(), free_port()]
    logs = [tmp_path / f"serve{i}.log" for i in range(2)]
    servers = [
        start_aoer(
            db_url,
            log,
            "serve",
            AOER_JWT_SECRET=SECRET,
            AOER_PORT=str(port),
            AOER_HOME=str(tmp_path),
        )
        for log, port in zip(logs, ports, strict=True)
    ]
    try:
        deadline = time.monotonic() + WAIT_S
        while not all("API listening" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for log in logs]
            assert all(s.poll() is None for s in servers), [log.read_text() for log in logs]
            time.sleep(0.1)
        for port in ports:  # each process has now seen (and remembers) the key
            assert call(port, "GET", "/api/tenants", key) == 200
        admin = TokenService(SECRET).mint("admin")
        assert call(ports[0], "DELETE", f"/api/keys/{key_id}", admin) == 204
        revoked_at = time.monotonic()
        assert call(ports[0], "GET", "/api/tenants", key) == 401, "at once where revoked"
        while call(ports[1], "GET", "/api/tenants", key) != 401:
            assert time.monotonic() - revoked_at < REVOCATION_BOUND_S, "still accepted after 5 s"
            time.sleep(0.05)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        assert [server.wait(30) for server in servers] == [0, 0]


def test_the_operator_cli_for_organisations_tenants_and_keys(aoer: AoerCli) -> None:
    org = aoer("orgs", "add", "Carter Group")
    assert org.returncode == 0, org.stderr
    org_id = UUID(org.stdout.split()[0])
    duplicate = aoer("orgs", "add", "carter group")
    assert duplicate.returncode == 1
    assert "an organisation named 'carter group' already exists" in duplicate.stderr
    listed = json.loads(aoer("orgs", "list", "--json").stdout)["organizations"]
    assert [(o["id"], o["name"], o["tenants"]) for o in listed] == [
        (str(org_id), "Carter Group", 0)
    ]
    unknown = aoer("tenants", "add", "Nowhere Motors", "--org", str(UUID(int=1)))
    assert unknown.returncode == 1
    assert f"unknown organisation {UUID(int=1)}" in unknown.stderr
    assert json.loads(aoer("tenants", "list", "--json").stdout)["tenants"] == []
    added = aoer("tenants", "add", "Carter Ford", "--org", str(org_id))
    assert added.returncode == 0, added.stderr
    tenant_id = added.stdout.split()[0]
    other = UUID(aoer("orgs", "add", "Other Agency").stdout.split()[0])
    moved = aoer("tenants", "move", tenant_id, "--org", str(other))
    assert moved.returncode == 0, moved.stderr
    tenants = json.loads(aoer("tenants", "list", "--json").stdout)["tenants"]
    assert [(t["id"], t["orgId"]) for t in tenants] == [(tenant_id, str(other))]
    for args, words in [
        (("keys", "create"), "give exactly one of --org ID, --tenant ID, --service, --admin"),
        (("keys", "create", "--admin", "--expires", "-5d"), "invalid --expires '-5d'"),
        (("keys", "create", "--admin", "--expires", "0d"), "must be in the future"),
        (("keys", "create", "--org", str(UUID(int=2))), f"unknown organisation {UUID(int=2)}"),
        (("keys", "revoke", str(UUID(int=3))), f"unknown API key {UUID(int=3)}"),
    ]:
        refused = aoer(*args)
        assert refused.returncode != 0, args
        assert words in refused.stderr, (args, refused.stderr)
    assert json.loads(aoer("keys", "list", "--json").stdout)["keys"] == []
    made = aoer("keys", "create", "--tenant", tenant_id)
    key_id = json.loads(aoer("keys", "list", "--json").stdout)["keys"][0]["id"]
    assert made.stdout.strip().splitlines()[-1].startswith("aoer_")
    table = aoer("keys", "list", COLUMNS="250").stdout
    assert f"Carter Ford ({tenant_id})" in table  # whom it is for, by name
    revoked = aoer("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(aoer("keys", "list", "--json").stdout)["keys"][0]["state"] == "revoked"
