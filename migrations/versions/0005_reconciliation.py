"""reconciliation: closes no webhook told us about, from amoCRM's event log

Revision ID: 0005
Revises: 0004

- integrations.reconcile_*: the periodic reconciliation's cursor (moves only past what was committed),
  last run, recovered (last run and total), unreadable `talk_closed` events, last error.
- reconcile_runs: a backfill of a chosen period and its progress.
"""
from alembic import op
import sqlalchemy as sa

from core.platform.db import UTCDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reconcile_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('integration_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('date_from', UTCDateTime(timezone=True), nullable=False),
    sa.Column('date_till', UTCDateTime(timezone=True), nullable=False),
    sa.Column('reached', UTCDateTime(timezone=True), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('talks_found', sa.Integer(), nullable=False),
    sa.Column('already_recorded', sa.Integer(), nullable=False),
    sa.Column('recovered', sa.Integer(), nullable=False),
    sa.Column('not_closed', sa.Integer(), nullable=False),
    sa.Column('not_found', sa.Integer(), nullable=False),
    sa.Column('unreadable', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('requested_by', sa.String(length=200), nullable=True),
    sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('queued', 'running', 'done', 'failed')", name=op.f('ck_reconcile_runs_status')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_reconcile_runs_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'], name=op.f('fk_reconcile_runs_integration_id_integrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconcile_runs'))
    )
    with op.batch_alter_table('reconcile_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reconcile_runs_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reconcile_runs_integration_id'), ['integration_id'], unique=False)

    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reconcile_cursor', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reconciled_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reconcile_recovered_last', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reconcile_recovered_total', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reconcile_unreadable_total', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reconcile_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reconcile_error_at', UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        for name in ('reconcile_error_at', 'reconcile_error', 'reconcile_unreadable_total', 'reconcile_recovered_total',
                     'reconcile_recovered_last', 'reconciled_at', 'reconcile_cursor'):
            batch_op.drop_column(name)

    with op.batch_alter_table('reconcile_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reconcile_runs_integration_id'))
        batch_op.drop_index(batch_op.f('ix_reconcile_runs_account_id'))
    op.drop_table('reconcile_runs')
