"""The operator's commands, run for real: tenants, signals, enqueue, worker, cron, status."""

import json
import re
import socket
import subprocess
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from aoer.db.schema import available_migrations
from tests.acceptance.conftest import CLI_TIMEOUT_S, AoerCli, cli_command, cli_env, run_aoer
from tests.migration.before import migrated_before

HEADER = "dealer_id,date,seo,aeo,geo,ugc,geolocal,observed_aiv,observed_rar\n"


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return int(row[0])


def test_operator_walkthrough(aoer: AoerCli, db_url: str, tmp_path: Path) -> None:
    migrated = aoer("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "schema is current" in migrated.stdout

    tenant = str(uuid4())
    added = aoer("tenants", "add", "Summit Ford", "--id", tenant, "--domain", "summitford.example")
    assert added.returncode == 0, added.stderr
    assert tenant in added.stdout
    listed = aoer("tenants", "list")
    assert "Summit Ford" in listed.stdout
    assert "summitford.example" in listed.stdout

    csv = tmp_path / "signals.csv"
    csv.write_text(
        HEADER
        + "".join(f"{tenant},2026-11-{day:02d},50,60.00,70,80,40,65,120\n" for day in range(20, 26))
    )
    imported = aoer("signals", "import", str(csv), "--no-enqueue")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "imported 6 rows for 1 tenant\n", "the result line alone"
    again = aoer("signals", "import", str(csv), "--no-enqueue")
    assert again.returncode == 0, "re-sending days replaces them"
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 6

    queued = aoer("enqueue", tenant, "--priority", "high")
    assert queued.returncode == 0, queued.stderr
    assert f"[AOER] Queued recompute for tenant {tenant} (priority: high)" in queued.stderr

    status = aoer("status")
    assert status.returncode == 0, status.stderr
    pending = next(line for line in status.stdout.splitlines() if "pending" in line)
    assert re.search(r"pending\s*│\s*0\s*│\s*1\s*│", pending), status.stdout

    worked = aoer("worker", "--drain")
    assert worked.returncode == 0, worked.stderr
    assert "[AOER] AOER Orchestrator worker active" in worked.stdout
    assert f"[AOER] ✅ Completed recompute for tenant {tenant}" in worked.stdout
    assert count(db_url, "SELECT count(*) FROM aoer_summary") == 1
    assert count(db_url, "SELECT count(*) FROM metrics_events") == 1

    cron = aoer("cron", "--once")
    assert cron.returncode == 0, cron.stderr
    assert "[AOER] Cron job triggered - queuing all tenants for recompute" in cron.stderr
    assert "[AOER] Queued 1 tenants for recompute" in cron.stderr
    assert cron.stdout == "queued 1 tenants\n", "a one-shot command's logs go to stderr"
    # A person queuing the fleet is audited (DESIGN §12), from the CLI as over HTTP.
    with psycopg.connect(db_url) as conn:
        audited = conn.execute(
            "SELECT action, role, details FROM audit_log WHERE action = 'cron.trigger'"
        ).fetchall()
    assert audited == [("cron.trigger", "admin", {"queued": 1})]


def test_bad_enqueue_input_gets_a_clear_error_and_writes_nothing(
    aoer: AoerCli, db_url: str
) -> None:
    tenant = str(uuid4())
    assert aoer("tenants", "add", "Riverside Honda", "--id", tenant).returncode == 0
    cases = [
        (("enqueue", "12345"), "malformed tenant id '12345'"),
        (("enqueue", str(uuid4())), "unknown tenant"),
        (("enqueue", tenant, "--priority", "asap"), "unknown priority 'asap'"),
        (("tenants", "add", "Dup", "--id", tenant), "already exists"),
        (("tenants", "add", "Bad", "--id", "nope"), "malformed tenant id 'nope'"),
        (("tenants", "add", " riverside HONDA"), "a tenant named 'riverside HONDA' already exists"),
        (("tenants", "add", "Other", "--domain", "not a domain"), "invalid domain: 'not a domain'"),
    ]
    for args, message in cases:
        result = aoer(*args)
        assert result.returncode == 1, args
        assert message in result.stderr, (args, result.stderr)
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0
    assert count(db_url, "SELECT count(*) FROM tenants") == 1


def test_signals_import_names_the_bad_line_and_writes_nothing(
    aoer: AoerCli, db_url: str, tmp_path: Path
) -> None:
    tenant = str(uuid4())
    assert aoer("tenants", "add", "Bayview Toyota", "--id", tenant).returncode == 0
    good = f"{tenant},2026-11-01,50,60,70,80,40,65,120\n"
    cases = {
        "out of range": (good + f"{tenant},2026-11-02,50,160,70,80,40,65,120\n", ":3: ", "aeo"),
        "bad uuid": (
            good + good.replace(tenant, "xyz").replace("11-01", "11-03"),
            ":3: ",
            "dealer_id",
        ),
        "bad date": (good + f"{tenant},2026-13-40,1,1,1,1,1,1,1\n", ":3: ", "date"),
        "future date": (good + f"{tenant},2999-01-01,1,1,1,1,1,1,1\n", ":3: ", "future"),
        "unknown dealer": (good + good.replace(tenant, str(uuid4())), ":3: ", "unknown tenant"),
        "duplicate day": (good + good, ":3: ", "duplicates line 2"),
        "too many cells": (good + good.strip() + ",9\n", ":3: ", "10 cells, but the header"),
    }
    for name, (body, line, field) in cases.items():
        csv = tmp_path / f"{name.replace(' ', '_')}.csv"
        csv.write_text(HEADER + body)
        result = aoer("signals", "import", str(csv))
        assert result.returncode == 1, name
        assert f"{csv}{line}" in result.stderr, (name, result.stderr)
        assert field in result.stderr, (name, result.stderr)
    assert count(db_url, "SELECT count(*) FROM aiv_raw_signals") == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0

    wrong_header = tmp_path / "header.csv"
    wrong_header.write_text("dealer,date\n")
    result = aoer("signals", "import", str(wrong_header))
    assert result.returncode == 1
    assert f"{wrong_header}:1: column dealer: unknown column" in result.stderr


def test_every_command_that_queues_honours_aoer_max_retries(
    aoer: AoerCli, db_url: str, tmp_path: Path
) -> None:
    assert aoer("migrate").returncode == 0
    imported, enqueued, cron_only = (str(uuid4()) for _ in range(3))
    for number, tenant in enumerate((imported, enqueued, cron_only)):
        assert aoer("tenants", "add", f"Dealer {number}", "--id", tenant).returncode == 0
    csv = tmp_path / "signals.csv"
    csv.write_text(HEADER + f"{imported},2026-11-20,50,60,70,80,40,,\n")
    retries = {"AOER_MAX_RETRIES": "7"}
    assert aoer("signals", "import", str(csv), **retries).returncode == 0
    assert aoer("enqueue", enqueued, **retries).returncode == 0
    assert aoer("cron", "--once", **retries).returncode == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 3
    assert count(db_url, "SELECT count(*) FROM aoer_queue WHERE max_retries = 7") == 3


def test_a_worker_started_while_the_database_is_down_retries_then_exits_clearly(
    aoer: AoerCli, tmp_path: Path
) -> None:
    """Every attempt is logged; after AOER_CONNECT_TIMEOUT the worker exits non-zero with one
    line that says why, not a traceback."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    done = aoer("worker", DATABASE_URL=down, AOER_CONNECT_TIMEOUT="4")
    assert done.returncode == 1, done.stderr
    assert "database unreachable (attempt 1)" in done.stdout  # the log
    assert "database unreachable (attempt 2)" in done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "PostgreSQL unreachable for 4s (AOER_CONNECT_TIMEOUT)" in errors[0]
    assert "Traceback" not in done.stderr


def test_listings_print_whole_ids_when_piped_and_json_on_request(aoer: AoerCli) -> None:
    """DESIGN §16: off a terminal nothing is cut, even at 80 columns; `--json` is one
    document and nothing else."""
    names = [f"Dealership With A Rather Long Name Number {i}" for i in range(3)]
    ids = []
    for name in names:
        added = aoer("tenants", "add", name, "--domain", "example.com")
        assert added.returncode == 0, added.stderr
        ids.append(added.stdout.split()[0])
    listed = aoer("tenants", "list", COLUMNS="80")
    assert listed.returncode == 0, listed.stderr
    for tenant_id, name in zip(ids, names, strict=True):
        assert tenant_id in listed.stdout
        assert name in listed.stdout
    as_json = aoer("tenants", "list", "--json", COLUMNS="80")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert sorted(t["id"] for t in document["tenants"]) == sorted(ids)
    status = json.loads(aoer("status", "--json").stdout)
    assert status["jobs"]["queued"] == {}
    assert status["throughput"] == {"lastMinute": 0, "lastHour": 0}
    assert status["paused"] is False
    model = json.loads(aoer("model", "status", "--json", COLUMNS="80").stdout)
    assert model["champion"]["version"] == "v1"


def test_names_print_as_typed_and_added_lines_are_tab_separated(aoer: AoerCli) -> None:
    """Brackets and colons in a name are text, not markup or emoji codes (a name like
    `Bay [/b]` once failed the command after the tenant was committed), and `tenants add`
    prints `id<TAB>name` on one line even piped at 80 columns."""
    names = ["Bay Motors [/b]", "Motors [UK] :car: Ltd", "A" * 90]
    for name in names:
        added = aoer("tenants", "add", name, COLUMNS="80")
        assert added.returncode == 0, added.stderr
        assert "Traceback" not in added.stderr
        tenant_id, printed = added.stdout.rstrip("\n").split("\t")
        assert (printed, len(tenant_id)) == (name, 36)
    listed = aoer("tenants", "list")
    assert listed.returncode == 0, listed.stderr
    for name in names:
        assert name in listed.stdout
    # A message is one line too, however narrow the terminal it is piped from.
    queued = aoer("enqueue", tenant_id, COLUMNS="80")
    assert queued.returncode == 0, queued.stderr
    [line] = queued.stdout.splitlines()
    assert line.startswith(f"tenant {tenant_id} queued as job "), line
    assert line.endswith("(priority medium)"), line


def test_tenants_update_renames_and_deactivates_and_a_move_to_where_it_is_changes_nothing(
    aoer: AoerCli, db_url: str
) -> None:
    added = aoer("tenants", "add", "Hill Motors")
    assert added.returncode == 0, added.stderr
    tenant = added.stdout.split("\t")[0]
    assert aoer("enqueue", tenant).returncode == 0  # a waiting job, cancelled by the update
    done = aoer("tenants", "update", tenant, "--name", "Hill Motors (closed)", "--inactive")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{tenant}\tHill Motors (closed)\tinactive\n"
    assert "note: its waiting job was cancelled" in done.stderr
    assert count(db_url, "SELECT count(*) FROM aoer_queue") == 0
    assert count(db_url, "SELECT count(*) FROM tenants WHERE NOT active") == 1
    changes = "SELECT count(*) FROM audit_log WHERE action = 'tenant.change'"
    assert count(db_url, changes) == 1
    nothing = aoer("tenants", "update", tenant)
    assert nothing.returncode == 2
    assert "nothing to change" in nothing.stderr
    unknown = aoer("tenants", "update", str(uuid4()), "--active")
    assert unknown.returncode == 1
    assert "unknown tenant" in unknown.stderr
    assert count(db_url, changes) == 1
    stays = aoer("tenants", "move", tenant, "--org", "none")  # it is in none already
    assert stays.returncode == 0, stays.stderr
    assert stays.stdout == f"{tenant} is already in no organisation; nothing changed\n"
    assert count(db_url, "SELECT count(*) FROM audit_log WHERE action = 'tenant.move'") == 0


def test_tenants_list_filters_by_organisation_and_names_it(aoer: AoerCli) -> None:
    """An administrator with many organisations lists one organisation's dealerships, or
    those in none, and reads the organisation's name; `--json` writes times as the API does."""
    group = aoer("orgs", "add", "Harbour Group").stdout.split()[0]
    for name, org in (("Harbour Ford", group), ("Harbour Kia", group), ("Lone Motors", None)):
        added = aoer("tenants", "add", name, *(("--org", org) if org else ()))
        assert added.returncode == 0, added.stderr

    def listed(*args: str) -> list[tuple[str, str | None]]:
        out = aoer("tenants", "list", "--json", *args)
        assert out.returncode == 0, out.stderr
        return [(t["name"], t["orgId"]) for t in json.loads(out.stdout)["tenants"]]

    assert listed("--org", group) == [("Harbour Ford", group), ("Harbour Kia", group)]
    assert listed("--org", "none") == [("Lone Motors", None)]
    assert len(listed()) == 3
    table = aoer("tenants", "list").stdout
    assert re.search(r"Harbour Ford .*Harbour Group", table), table
    assert group not in table, "the organisation by name, not by id"
    unknown = aoer("tenants", "list", "--org", str(UUID(int=7)))
    assert unknown.returncode == 1
    assert f"unknown organisation {UUID(int=7)}" in unknown.stderr
    bad = aoer("tenants", "list", "--org", "harbour")
    assert bad.returncode == 1
    assert "malformed organisation id 'harbour'" in bad.stderr
    tenant = json.loads(aoer("tenants", "list", "--json").stdout)["tenants"][0]
    org = json.loads(aoer("orgs", "list", "--json").stdout)["organizations"][0]
    for moment in (tenant["createdAt"], tenant["updatedAt"], org["createdAt"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", moment), moment


def test_a_worker_refuses_a_database_that_is_not_migrated(server_url: str, tmp_path: Path) -> None:
    """Started before `aoer migrate` (or on an old system's database not adopted yet), a
    worker said it was active and logged a traceback a batch; it now stops at once, saying
    what to run."""
    newest = max(available_migrations(), key=lambda m: m.version)
    with migrated_before(server_url, newest.version) as url:
        started = run_aoer(url, tmp_path, "worker", "--drain")
        assert started.returncode == 1, started.stdout
        assert "worker active" not in started.stdout
        assert "Traceback" not in started.stderr
        assert (
            "error: the database's schema is behind this version of aoer: 1 migration is pending"
            f" ({newest.version:04d}_{newest.name} first); run `aoer migrate` first"
        ) in started.stderr
        status = run_aoer(url, tmp_path, "status")
        assert f"1 migration pending ({newest.version:04d}_{newest.name} first)" in status.stdout
        assert json.loads(run_aoer(url, tmp_path, "status", "--json").stdout)[
            "pendingMigrations"
        ] == [f"{newest.version:04d}_{newest.name}"]
        assert run_aoer(url, tmp_path, "migrate").returncode == 0
        drained = run_aoer(url, tmp_path, "worker", "--drain")
        assert drained.returncode == 0, drained.stderr
        assert "[AOER] AOER Orchestrator worker active" in drained.stdout


def refuse_with_a_timeout(db_url: str, tenants: list[str]) -> None:
    """These tenants' recomputes end as a statement timeout does, every time (SQLSTATE
    57014, as a recompute that never finishes within statement_timeout)."""
    listed = ", ".join(f"'{t}'" for t in tenants)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            f"""
            CREATE FUNCTION time_out() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.tenant_id IN ({listed}) THEN
                    RAISE EXCEPTION 'canceling statement due to statement timeout'
                        USING ERRCODE = 'query_canceled';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER time_out BEFORE INSERT OR UPDATE ON aoer_summary
                FOR EACH ROW EXECUTE FUNCTION time_out();
            """  # type: ignore[arg-type]
        )


def test_a_tenant_that_always_times_out_no_longer_holds_its_batch(
    aoer: AoerCli, db_url: str
) -> None:
    """A timeout is no tenant's fault once; the same batch timing out on the same tenant
    try after try held every tenant in it for good (retried in place, then released and
    claimed again, no attempt ever spent). Now the worker isolates it: it spends an attempt
    (and after its last one fails with an alert), its neighbours complete."""
    tenants = [aoer("tenants", "add", f"Batch Motors {i}").stdout.split()[0] for i in range(6)]
    slow = tenants[2]
    refuse_with_a_timeout(db_url, [slow])
    assert aoer("cron", "--once").returncode == 0
    worked = aoer("worker", "--drain", AOER_WORKER_CONCURRENCY="1")
    assert worked.returncode == 0, worked.stderr
    logged = worked.stdout + worked.stderr
    assert "isolating the tenants it keeps failing on" in logged
    # The retry's warning says what PostgreSQL said beyond its first line.
    assert "canceling statement due to statement timeout (SQLSTATE 57014; CONTEXT:" in logged
    assert count(db_url, "SELECT count(*) FROM aoer_queue WHERE status = 'completed'") == 5
    with psycopg.connect(db_url) as conn:
        [(tenant, status, attempts)] = conn.execute(
            "SELECT tenant_id::text, status, retry_count FROM aoer_queue"
            " WHERE status <> 'completed'"
        ).fetchall()
        [(message,)] = conn.execute("SELECT error_message FROM aoer_failures").fetchall()
    assert (tenant, status, attempts) == (slow, "queued", 1)  # retried later, with backoff
    assert message == (
        "canceling statement due to statement timeout (SQLSTATE 57014; CONTEXT: PL/pgSQL"
        " function time_out() line 4 at RAISE) (every time: isolated from its batch)"
    )


def test_a_timeout_on_every_tenant_blames_none_of_them(aoer: AoerCli, db_url: str) -> None:
    """A conflict on more than a few tenants is not theirs (a lock on a whole table): the
    isolating try gives up, no attempt is spent, and the batch is released as before."""
    tenants = [aoer("tenants", "add", f"Locked Motors {i}").stdout.split()[0] for i in range(8)]
    refuse_with_a_timeout(db_url, tenants)
    assert aoer("cron", "--once").returncode == 0
    worker = subprocess.Popen(
        cli_command("worker"),
        env=cli_env(db_url, AOER_WORKER_CONCURRENCY="1", AOER_CONNECT_TIMEOUT="4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        assert worker.stdout is not None
        for line in worker.stdout:  # released, then claimed again: it never drains
            seen.append(line)
            if "released 8 of 8 jobs back to the queue" in line:
                break
    finally:
        worker.terminate()
        worker.wait(CLI_TIMEOUT_S)
    assert "isolating the tenants it keeps failing on" in "".join(seen)
    assert "released 8 of 8 jobs back to the queue" in seen[-1]
    assert count(db_url, "SELECT count(*) FROM aoer_failures") == 0
    assert count(db_url, "SELECT count(*) FROM aoer_queue WHERE retry_count = 0") == 8


def test_status_and_workers_say_when_no_worker_runs(aoer: AoerCli, db_url: str) -> None:
    """`aoer status` showed waiting jobs and a throughput of 0 without a word about workers,
    and `aoer workers` an empty table: with none running nothing is recomputed."""
    status = aoer("status")
    assert "no live worker: nothing is recomputed and the scheduled refresh does not run" in (
        status.stdout
    )
    assert json.loads(aoer("status", "--json").stdout)["liveWorkers"] == 0
    assert "no live worker" in aoer("workers").stdout
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO aoer_workers (id, host, pid, jobs_in_hand, last_heartbeat_at) VALUES"
            " ('w-live', 'h1', 11, 3, now()), ('w-dead', 'h2', 12, 9, now() - interval '1 hour')"
        )
    status = aoer("status")
    assert "workers: 1 live, 3 jobs in hand" in status.stdout
    assert "no live worker" not in status.stdout
    assert json.loads(aoer("status", "--json").stdout)["liveWorkers"] == 1
    workers = aoer("workers", COLUMNS="200").stdout
    assert "no live worker" not in workers
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", workers), "times say their zone"


def test_status_says_when_pending_jobs_all_wait_out_a_backoff(aoer: AoerCli, db_url: str) -> None:
    """Pending jobs none of which is due showed an oldest age of "-" and nothing else: an
    operator could not tell a stuck queue from retries waiting their turn."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "WITH t AS (INSERT INTO tenants (name) VALUES ('Retry Motors') RETURNING id)"
            " INSERT INTO aoer_queue (tenant_id, retry_count, scheduled_at)"
            " SELECT id, 1, now() + interval '75 seconds' FROM t"
        )
    status = aoer("status")
    assert re.search(
        r"1 pending job waits out a retry's backoff; the next is due in 7[0-5]s", status.stdout
    ), status.stdout
    assert json.loads(aoer("status", "--json").stdout)["nextDueAt"].endswith("Z")
