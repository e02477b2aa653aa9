"""Flask CLI, the operator's onboarding: `accounts create NAME` / `accounts list`, `users set EMAIL
--account N`, `api-tokens create NAME --account N`; and `secrets reencrypt`, `bootstrap`."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from core.access.accounts import (
    AccountError,
    account_for_command,
    create_account,
    create_api_token,
    list_accounts,
    set_user,
    user_by_email,
)
from core.access.accounts import (
    bootstrap as core_bootstrap,
)
from core.models import Account, Integration
from web.extensions import db

ACCOUNT_OPTION_HELP = "Account id (see `accounts list`); may be left out only when there is one account."


def _account(account_id: int | None) -> Account:
    try:
        return account_for_command(db.session, account_id)
    except AccountError as exc:
        raise click.ClickException(str(exc))


def register_cli(app: Flask) -> None:
    accounts = AppGroup("accounts", help="Client accounts: each sees only its own integrations and data.")

    @accounts.command("create")
    @click.argument("name")
    def create_account_cmd(name):
        """Create an account; its id is printed as the last line (for scripts)."""
        try:
            account = create_account(db.session, name)
        except AccountError as exc:
            raise click.ClickException(str(exc))
        db.session.commit()
        click.echo(f"Created account {account.name!r}. Next: users set EMAIL --account {account.id}", err=True)
        click.echo(account.id)

    @accounts.command("list")
    def list_accounts_cmd():
        """Every account: id, name, created, users, integrations (tab-separated)."""
        click.echo("id\tname\tcreated\tusers\tintegrations")
        for row in list_accounts(db.session):
            click.echo(f"{row.id}\t{row.name}\t{row.created_at:%Y-%m-%d %H:%M}\t{row.users}\t{row.integrations}")

    tokens = AppGroup("api-tokens", help="Data API tokens.")

    @tokens.command("create")
    @click.argument("name")
    @click.option("--account", "account_id", type=int, help=ACCOUNT_OPTION_HELP)
    def create_token(name, account_id):
        """Create a token; the token itself is printed once, as the last line."""
        account = _account(account_id)
        try:
            row, plaintext = create_api_token(db.session, account.id, name)
        except AccountError as exc:
            raise click.ClickException(str(exc))
        db.session.commit()
        click.echo(f"Created API token #{row.id} {name!r} for account {account.id} ({account.name}). Keep it safe:", err=True)
        click.echo(plaintext)

    users = AppGroup("users", help="Admin users.")

    @users.command("set")
    @click.argument("email")
    @click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
    @click.option("--account", "account_id", type=int, help=ACCOUNT_OPTION_HELP)
    def set_user_cmd(email, password, account_id):
        """Create an admin user, or reset the password of an existing one (never of another account's)."""
        try:
            existing = user_by_email(db.session, email)
        except AccountError as exc:
            raise click.ClickException(str(exc))
        # Resetting a known user's password needs no --account: the user says which account it is in.
        account = _account(existing.account_id if existing is not None and account_id is None else account_id)
        try:
            user = set_user(db.session, account.id, email, password)
        except AccountError as exc:
            raise click.ClickException(str(exc))
        db.session.commit()
        click.echo(f"User {user.email} is ready (account {account.id}).")

    secrets_group = AppGroup("secrets", help="Encrypted secrets.")

    @secrets_group.command("reencrypt")
    def reencrypt():
        """Re-encrypt every stored secret under the first key of TOKEN_ENCRYPTION_KEYS."""
        box = current_app.extensions["chatsource.services"].secrets
        count = 0
        for integration in db.session.scalars(sa.select(Integration)):
            for column in ("client_secret_enc", "access_token_enc", "refresh_token_enc", "webhook_token_enc"):
                value = getattr(integration, column)
                if value:
                    setattr(integration, column, box.rotate(value))
                    count += 1
        db.session.commit()
        click.echo(f"Re-encrypted {count} secrets under the primary key. Old keys can now be removed.")

    @app.cli.command("bootstrap")
    def bootstrap():
        """Create the first account (and ADMIN_EMAIL's user); run by the release phase after migrations."""
        settings = current_app.extensions["chatsource.settings"]
        account, created = core_bootstrap(db.session, settings.admin_email, settings.admin_password)
        db.session.commit()
        click.echo(f"Account {account.id} ({account.name}) ready." + (f" Admin {created.email} created." if created else ""))

    app.cli.add_command(accounts)
    app.cli.add_command(tokens)
    app.cli.add_command(users)
    app.cli.add_command(secrets_group)
