"""Who a command acts as, for the audit log, when the operating system cannot say: a
container running as a user id with no /etc/passwd entry and no $USER."""

import getpass

import pytest

from aoer.cli.alerts import _actor
from aoer.cli.console import operator
from aoer.cli.runner import cli_actor


@pytest.mark.parametrize("error", [KeyError("getpwuid(): uid not found: 4242"), OSError()])
def test_every_command_acts_as_plain_cli_when_the_user_is_unknown(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def unknown() -> str:
        raise error

    monkeypatch.setattr(getpass, "getuser", unknown)
    assert cli_actor() == "cli"
    assert (operator().subject, operator().role) == ("cli", "admin")  # jobs, queue
    assert (_actor().subject, _actor().role) == ("cli", "admin")  # alert rules, endpoints


def test_a_known_user_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getuser", lambda: "ops")
    assert (cli_actor(), operator().subject, _actor().subject) == ("cli:ops",) * 3
