"""Flask CLI: `flask --app wsgi api-tokens create NAME`, `users set EMAIL`, `secrets reencrypt`, `bootstrap`."""
from __future__ import annotations

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from core.accounts import AccountError, bootstrap as core_bootstrap, create_api_token, ensure_first_account, set_user
from core.models import Account, Integration
from web.extensions import db


def _account(account_id: int | None) -> Account:
    if account_id is None:
        return ensure_first_account(db.session)
    account = db.session.get(Account, account_id)
    if account is None:
        raise click.ClickException(f"account {account_id} does not exist")
    return account


def register_cli(app: Flask) -> None:
    tokens = AppGroup("api-tokens", help="Data API tokens.")

    @tokens.command("create")
    @click.argument("name")
    @click.option("--account", "account_id", type=int, help="Account id (default: the first account).")
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
    @click.option("--account", "account_id", type=int)
    def set_user_cmd(email, password, account_id):
        """Create an admin user, or reset the password of an existing one."""
        account = _account(account_id)
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

    app.cli.add_command(tokens)
    app.cli.add_command(users)
    app.cli.add_command(secrets_group)
