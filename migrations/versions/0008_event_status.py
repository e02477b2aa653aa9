"""event status: webhook_events.status held to the known values by a CHECK constraint

Revision ID: 0008
Revises: 0007

The values are those of core.inbox.event_status.EventStatus at this revision, written out here so the
migration keeps meaning the same thing when the enum grows (a new status comes with its own
migration). A row with any other status would be a bug; none is written by the code, so the
constraint is added without touching data. SQLite cannot add a constraint in place: batch mode
recreates the table.
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

STATUSES = ('received', 'processing', 'done', 'skipped', 'ignored', 'parked', 'failed')
CONDITION = "status in ({})".format(", ".join(f"'{s}'" for s in STATUSES))


def upgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_webhook_events_status'), CONDITION)


def downgrade():
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_webhook_events_status'), type_='check')
