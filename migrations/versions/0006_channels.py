"""channels and raw phones: which channels an integration passes, the phone as amoCRM held it

Revision ID: 0006
Revises: 0005

- integrations.excluded_channels: the channels whose talks are not passed (kept as `ignored`),
  stored as the excluded ones so that a channel seen for the first time is passed. Existing
  integrations get e-mail excluded like new ones: e-mail conversations are talks on live accounts
  (com.amocrm.mail), and the spec passes chats only.
- requests.phone_raw: the contact's phone exactly as amoCRM held it, next to the E.164 guess.
"""
from alembic import op
import sqlalchemy as sa

from core.platform.db import JSONType

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('excluded_channels', JSONType, nullable=False,
                                      server_default=sa.text("'[\"email\"]'")))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_raw', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_column('phone_raw')
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('excluded_channels')
