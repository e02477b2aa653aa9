"""reports: indexes for the Raw data report, the search column, replay runs, webhook check time

Revision ID: 0004
Revises: 0003

- requests: one index per report filter (account + column + created_at) and `search_text` (case-folded
  name, email and phone digits) with a pg_trgm GIN index on PostgreSQL for substring search. Where
  the extension cannot be created (no privilege), a plain index of the same name is made instead:
  search still works, as a scan bounded by the account and the other filters.
- integrations.webhook_checked_at: when the periodic check last read amoCRM's webhook list.
- replay_runs and webhook_events.replay_run_id: «replay by filter» and its progress.
"""
import logging

from alembic import op
import sqlalchemy as sa

from core.platform.db import JSONType, UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

FILTER_INDEXES = (
    ("ix_requests_account_channel_created", "channel"),
    ("ix_requests_account_campaign_created", "campaign_id"),
    ("ix_requests_account_source_created", "source_id"),
    ("ix_requests_account_site_created", "site_id"),
    ("ix_requests_account_attribution_created", "attribution"),
    ("ix_requests_account_integration_created", "integration_id"),
)
BACKFILL_BATCH = 2000


def request_search_text(contact_name, email, phone):
    """Frozen copy of core.models.request_search_text as of this revision."""
    parts = [(contact_name or "").casefold().strip(), (email or "").casefold().strip(), "".join(ch for ch in (phone or "") if ch.isdigit())]
    text = "\n".join(parts)
    return text if text.strip() else None


def _has_pg_trgm(bind) -> bool:
    """Create pg_trgm if we may (it is a trusted extension from PostgreSQL 13 on); never fail the migration."""
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        return True
    except sa.exc.DBAPIError as exc:
        log.warning("pg_trgm is not available (%s); the request search falls back to a scan", exc.orig)
        return False


def _backfill_search_text(bind) -> None:
    requests = sa.table("requests", sa.column("id"), sa.column("contact_name"), sa.column("email"),
                        sa.column("phone"), sa.column("search_text"))
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(requests.c.id, requests.c.contact_name, requests.c.email, requests.c.phone)
            .where(requests.c.id > last_id).order_by(requests.c.id).limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        last_id = rows[-1].id
        values = [{"rid": r.id, "text": request_search_text(r.contact_name, r.email, r.phone)} for r in rows]
        bind.execute(
            sa.update(requests).where(requests.c.id == sa.bindparam("rid")).values(search_text=sa.bindparam("text")),
            values,
        )


def upgrade():
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"

    op.create_table('replay_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=True),
    sa.Column('statuses', JSONType, nullable=False),
    sa.Column('date_from', UTCDateTime(timezone=True), nullable=True),
    sa.Column('date_till', UTCDateTime(timezone=True), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('skipped', JSONType, nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_replay_runs_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_replay_runs_integration_id_integrations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replay_runs'))
    )
    with op.batch_alter_table('replay_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replay_runs_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_run_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_webhook_events_replay_run_id'), ['replay_run_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_webhook_events_replay_run_id_replay_runs'), 'replay_runs',
                                    ['replay_run_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('webhook_checked_at', UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_text', sa.Text(), nullable=True))
        for name, column in FILTER_INDEXES:
            batch_op.create_index(name, ['account_id', column, 'created_at'], unique=False)
    _backfill_search_text(bind)
    if postgresql and _has_pg_trgm(bind):
        op.create_index('ix_requests_search_text', 'requests', ['search_text'], unique=False,
                        postgresql_using='gin', postgresql_ops={'search_text': 'gin_trgm_ops'})
    else:
        op.create_index('ix_requests_search_text', 'requests', ['search_text'], unique=False)


def downgrade():
    op.drop_index('ix_requests_search_text', table_name='requests')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        for name, _ in reversed(FILTER_INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_column('search_text')

    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('webhook_checked_at')

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_webhook_events_replay_run_id_replay_runs'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_webhook_events_replay_run_id'))
        batch_op.drop_column('replay_run_id')

    with op.batch_alter_table('replay_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replay_runs_account_id'))
    op.drop_table('replay_runs')
