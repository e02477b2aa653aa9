"""Issue 10 §4: onboarding a client from the command line, without a way to mix two clients up."""
from __future__ import annotations

import sqlalchemy as sa

from core.access.accounts import authenticate_api_token, check_password
from core.models import Account, User


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_onboarding_a_client_end_to_end(app, services):
    first = _cli(app, "accounts", "create", "ООО Первый")
    second = _cli(app, "accounts", "create", "ООО Второй")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    first_id, second_id = int(first.stdout.strip().splitlines()[-1]), int(second.stdout.strip().splitlines()[-1])
    assert first_id != second_id

    listed = _cli(app, "accounts", "list")
    assert listed.exit_code == 0
    lines = listed.stdout.strip().splitlines()
    assert lines[0] == "id\tname\tcreated\tusers\tintegrations"
    assert any(line.startswith(f"{second_id}\tООО Второй\t") and line.endswith("\t0\t0") for line in lines)

    made = _cli(app, "users", "set", "Boss@Second.example", "--account", str(second_id), "--password", "long enough password")
    assert made.exit_code == 0, made.output
    token = _cli(app, "api-tokens", "create", "сайт", "--account", str(second_id))
    assert token.exit_code == 0, token.output
    plaintext = token.stdout.strip().splitlines()[-1]

    with services.session_factory() as session:
        user = session.scalar(sa.select(User).where(User.email == "boss@second.example"))
        assert user.account_id == second_id and check_password(user, "long enough password")
        assert authenticate_api_token(session, plaintext).account_id == second_id
    listed = _cli(app, "accounts", "list").stdout
    assert f"{second_id}\tООО Второй\t" in listed and listed.strip().splitlines()[-1].endswith("\t1\t0")


def test_users_set_refuses_an_email_of_another_account(app, services):
    a = int(_cli(app, "accounts", "create", "А").stdout.split()[-1])
    b = int(_cli(app, "accounts", "create", "Б").stdout.split()[-1])
    assert _cli(app, "users", "set", "owner@a.example", "--account", str(a), "--password", "password of a").exit_code == 0

    hijack = _cli(app, "users", "set", "owner@a.example", "--account", str(b), "--password", "attacker password")
    assert hijack.exit_code != 0 and "belongs to another account" in hijack.output
    with services.session_factory() as session:
        user = session.scalar(sa.select(User).where(User.email == "owner@a.example"))
        assert user.account_id == a and check_password(user, "password of a")

    # Resetting the password of a known user needs no --account.
    reset = _cli(app, "users", "set", "owner@a.example", "--password", "new password of a")
    assert reset.exit_code == 0, reset.output
    with services.session_factory() as session:
        assert check_password(session.scalar(sa.select(User).where(User.email == "owner@a.example")), "new password of a")


def test_with_several_accounts_the_account_must_be_named(app, services):
    _cli(app, "accounts", "create", "А")
    _cli(app, "accounts", "create", "Б")
    for args in (["api-tokens", "create", "t"], ["users", "set", "new@x.example", "--password", "password12"]):
        result = _cli(app, *args)
        assert result.exit_code != 0 and "--account N" in result.output
    missing = _cli(app, "api-tokens", "create", "t", "--account", "999999")
    assert missing.exit_code != 0 and "account 999999 does not exist" in missing.output
    with services.session_factory() as session:
        assert session.scalar(sa.select(sa.func.count(User.id))) == 0


def _accounts(services) -> int:
    with services.session_factory() as session:
        return session.scalar(sa.select(sa.func.count(Account.id)))


def test_an_account_needs_a_name(app, services):
    before = _accounts(services)
    result = _cli(app, "accounts", "create", "   ")
    assert result.exit_code != 0 and "give the account a name" in result.output
    assert _accounts(services) == before
