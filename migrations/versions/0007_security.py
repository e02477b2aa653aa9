"""security: OAuth connects bound to the admin and the browser, per-user session nonces

Revision ID: 0007
Revises: 0006

- oauth_states: the user who pressed «Подключить» (`user_id`) and a hash of a value kept in that
  browser's session (`browser_hash`); amoCRM's code parked, encrypted, when the redirect arrives
  anywhere else (`pending_code_enc`, `pending_referer`, `pending_since`) until a user of the
  integration's account confirms it through a single-use link (`confirm_hash`, `confirmed_at`).
- users.session_nonce: carried in the session cookie; a new one signs every copy of the cookie out.
  Existing users have none, so their current sessions end once at this release.
"""
from alembic import op
import sqlalchemy as sa

from core.platform.db import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('browser_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pending_code_enc', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('pending_referer', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('pending_since', UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('confirm_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('confirmed_at', UTCDateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_oauth_states_confirm_hash'), ['confirm_hash'])
        batch_op.create_foreign_key(batch_op.f('fk_oauth_states_user_id_users'), 'users', ['user_id'], ['id'],
                                    ondelete='SET NULL')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_nonce', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_nonce')

    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_oauth_states_user_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_oauth_states_confirm_hash'), type_='unique')
        for column in ('confirmed_at', 'confirm_hash', 'pending_since', 'pending_referer', 'pending_code_enc',
                       'browser_hash', 'user_id'):
            batch_op.drop_column(column)
