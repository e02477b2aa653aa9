"""request roll-up: the dashboard's daily counts, kept exact by triggers on requests

Revision ID: 0014
Revises: 0013

- request_daily_counts: one row per (account, local day in Europe/Moscow, integration, channel,
  campaign, source, attribution) with its count; campaign / source 0 = none.
- triggers on requests (core.reporting.rollup) add, subtract and move counts in the transaction that
  writes a request; the table is backfilled from the existing requests.
"""
from alembic import op
import sqlalchemy as sa

from core.reporting import rollup as request_rollup

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'request_daily_counts',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('integration_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=30), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('attribution', sa.String(length=20), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_request_daily_counts_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['integration_id'], ['integrations.id'],
                                name=op.f('fk_request_daily_counts_integration_id_integrations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_request_daily_counts')),
        sa.UniqueConstraint('account_id', 'day', 'integration_id', 'channel', 'campaign_id', 'source_id', 'attribution',
                            name='uq_request_daily_counts_key'),
    )
    connection = op.get_bind()
    # This revision's key: 0015 adds is_repeat to it (core.reporting.rollup.KEY).
    request_rollup.install(connection, request_rollup.KEY_0014)
    request_rollup.rebuild(connection, key=request_rollup.KEY_0014)


def downgrade():
    request_rollup.uninstall(op.get_bind())
    op.drop_table('request_daily_counts')
