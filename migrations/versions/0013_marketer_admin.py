"""marketer admin (issue 15): integrations can be deleted, accounts have a time zone, sites show refused page views

Revision ID: 0013
Revises: 0007

- integrations.deleted_at: a deleted integration keeps its row so that its requests stay in the
  reports; it is gone from every list, its webhook url answers 404 and it is never contacted again.
- accounts.time_zone: the IANA zone every time on every screen is shown in (default Europe/Moscow).
- sites.last_refused_*: the last page view the tracking endpoint refused for the site, and why
  (a page of another domain, a bot), written at most once a minute per reason.
"""
from alembic import op
import sqlalchemy as sa

from core.platform.db import UTCDateTime

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False, server_default='Europe/Moscow'))
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_refused_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_refused_reason', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('last_refused_detail', sa.String(length=300), nullable=True))


def downgrade():
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_column('last_refused_detail')
        batch_op.drop_column('last_refused_reason')
        batch_op.drop_column('last_refused_at')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')
