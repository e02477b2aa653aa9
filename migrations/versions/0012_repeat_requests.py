"""repeat requests (window, contact key, flags, recompute runs) and live checks on a test chat

Revision ID: 0012
Revises: 0007

- accounts.repeat_window_days (30).
- requests.contact_key (amoCRM contact per integration, else E.164 phone, else e-mail), is_repeat,
  first_request_id; indexes for the contact's series and the report's filter.
- repeat_recompute_runs: a window change recomputed in the background, with its progress.
- live_checks: «Проверить на тестовом обращении» — when an admin started waiting for the next chat.
- Backfill: every existing request gets its contact key and flags with the default window. The rules
  are copied here (not imported from core.inbox.repeat_requests) so this migration keeps doing what it did.
"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa

from core.platform.db import UTCDateTime

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BACKFILL_WINDOW = timedelta(days=30)


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repeat_window_days', sa.Integer(), server_default='30', nullable=False))

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_key', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('is_repeat', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('first_request_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                                      nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_requests_first_request_id_requests'), 'requests',
                                    ['first_request_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_requests_account_contact_created', ['account_id', 'contact_key', 'created_at'])
        batch_op.create_index('ix_requests_account_repeat_created', ['account_id', 'is_repeat', 'created_at'])
        batch_op.create_index('ix_requests_first_request_id', ['first_request_id'])

    op.create_table(
        'repeat_recompute_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('window_days', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('contacts_total', sa.Integer(), nullable=False),
        sa.Column('contacts_done', sa.Integer(), nullable=False),
        sa.Column('changed', sa.Integer(), nullable=False),
        sa.Column('cursor_key', sa.String(length=300), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('requested_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status in ('queued', 'running', 'done', 'superseded', 'failed')",
                           name=op.f('ck_repeat_recompute_runs_status')),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_repeat_recompute_runs_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_repeat_recompute_runs')),
    )
    op.create_index(op.f('ix_repeat_recompute_runs_account_id'), 'repeat_recompute_runs', ['account_id'])

    op.create_table(
        'live_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('integration_id', sa.Integer(), nullable=False),
        sa.Column('started_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('started_by', sa.String(length=200), nullable=True),
        sa.Column('after_event_id', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_live_checks_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'],
                                name=op.f('fk_live_checks_integration_id_integrations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_live_checks')),
    )
    op.create_index(op.f('ix_live_checks_account_id'), 'live_checks', ['account_id'])
    op.create_index(op.f('ix_live_checks_integration_id'), 'live_checks', ['integration_id'])

    _backfill()


def _key(integration_id, amo_contact_id, phone, email):
    if amo_contact_id:
        return f"amo:{integration_id}:{amo_contact_id}"
    if phone and phone.startswith("+"):
        return f"tel:{phone}"
    email = (email or "").strip().casefold()
    return f"email:{email}"[:300] if email else None


def _backfill():
    conn = op.get_bind()
    requests = sa.table('requests', sa.column('id'), sa.column('account_id'), sa.column('integration_id'),
                        sa.column('amo_contact_id'), sa.column('phone'), sa.column('email'),
                        sa.column('created_at', UTCDateTime()), sa.column('contact_key'), sa.column('is_repeat'),
                        sa.column('first_request_id'))
    series = {}
    rows = conn.execute(sa.select(requests.c.id, requests.c.account_id, requests.c.integration_id, requests.c.amo_contact_id,
                                  requests.c.phone, requests.c.email, requests.c.created_at)).all()
    for r in rows:
        key = _key(r.integration_id, r.amo_contact_id, r.phone, r.email)
        if key is not None:
            series.setdefault((r.account_id, key), []).append((r.created_at, r.id))
    updates = []
    for (_account_id, key), items in series.items():
        first_id = previous_at = None
        for created_at, request_id in sorted(items):
            repeat = first_id is not None and created_at - previous_at <= BACKFILL_WINDOW
            if not repeat:
                first_id = request_id
            updates.append({"rid": request_id, "key": key, "repeat": repeat, "first": first_id if repeat else None})
            previous_at = created_at
    stmt = (sa.update(requests).where(requests.c.id == sa.bindparam('rid'))
            .values(contact_key=sa.bindparam('key'), is_repeat=sa.bindparam('repeat'), first_request_id=sa.bindparam('first')))
    for start in range(0, len(updates), 1000):
        conn.execute(stmt, updates[start:start + 1000])


def downgrade():
    op.drop_index(op.f('ix_live_checks_integration_id'), table_name='live_checks')
    op.drop_index(op.f('ix_live_checks_account_id'), table_name='live_checks')
    op.drop_table('live_checks')
    op.drop_index(op.f('ix_repeat_recompute_runs_account_id'), table_name='repeat_recompute_runs')
    op.drop_table('repeat_recompute_runs')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_first_request_id')
        batch_op.drop_index('ix_requests_account_repeat_created')
        batch_op.drop_index('ix_requests_account_contact_created')
        batch_op.drop_constraint(batch_op.f('fk_requests_first_request_id_requests'), type_='foreignkey')
        batch_op.drop_column('first_request_id')
        batch_op.drop_column('is_repeat')
        batch_op.drop_column('contact_key')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('repeat_window_days')
