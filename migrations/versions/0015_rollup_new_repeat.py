"""request roll-up split into new and repeat requests (the dashboard's new/repeat split)

Revision ID: 0015
Revises: 0014

- request_daily_counts.is_repeat joins the roll-up's key (its unique constraint), so the dashboard
  reads the new / repeat split from the roll-up instead of counting the raw rows.
- the triggers (core.reporting.rollup) are replaced by ones that key on is_repeat too: a repeat
  recompute (core.inbox.repeat_requests) UPDATEs is_repeat and the count moves between the two rows.
- the roll-up is rebuilt from the requests.

On SQLite the constraint change copies request_daily_counts (batch mode): the triggers on requests
name that table, so they are dropped first and installed again after (requests itself is not copied).
"""
from alembic import op
import sqlalchemy as sa

from core.reporting import rollup as request_rollup

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_OLD_KEY = ['account_id', 'day', 'integration_id', 'channel', 'campaign_id', 'source_id', 'attribution']


def upgrade():
    connection = op.get_bind()
    request_rollup.uninstall(connection)
    with op.batch_alter_table('request_daily_counts') as batch:
        batch.add_column(sa.Column('is_repeat', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.drop_constraint('uq_request_daily_counts_key', type_='unique')
        batch.create_unique_constraint('uq_request_daily_counts_key', _OLD_KEY + ['is_repeat'])
    request_rollup.install(connection)
    request_rollup.rebuild(connection)


def downgrade():
    connection = op.get_bind()
    request_rollup.uninstall(connection)
    op.execute('delete from request_daily_counts')  # the new / repeat rows of a key would collide; rebuilt below
    with op.batch_alter_table('request_daily_counts') as batch:
        batch.drop_constraint('uq_request_daily_counts_key', type_='unique')
        batch.drop_column('is_repeat')
        batch.create_unique_constraint('uq_request_daily_counts_key', _OLD_KEY)
    request_rollup.install(connection, request_rollup.KEY_0014)
    request_rollup.rebuild(connection, key=request_rollup.KEY_0014)
