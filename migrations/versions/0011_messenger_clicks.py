"""messenger clicks: the site's chat-button clicks that attribute messenger chats without a session

Revision ID: 0011
Revises: 0007

- messenger_clicks: one row per click on a messenger icon of the amoCRM button (`messenger_click`
  posted to /t/collect), with the claim of the talk it attributed (at most one).
- integrations.click_window_minutes: how long before a chat began a click still counts (default 30, 0 = off).
"""
from alembic import op
import sqlalchemy as sa

from core.platform.db import UTCDateTime

revision = '0011'
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'messenger_clicks',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('account_id', sa.Integer(), nullable=False),
        sa.Column('site_id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('service', sa.String(length=50), nullable=False),
        sa.Column('channel', sa.String(length=30), nullable=False),
        sa.Column('clicked_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('claimed_integration_id', sa.Integer(), nullable=True),
        sa.Column('claimed_talk_id', sa.BigInteger(), nullable=True),
        sa.Column('claimed_at', UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_messenger_clicks_account_id_accounts'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_messenger_clicks_site_id_sites'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['session_id'], ['visitor_sessions.id'],
                                name=op.f('fk_messenger_clicks_session_id_visitor_sessions'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['claimed_integration_id'], ['integrations.id'],
                                name=op.f('fk_messenger_clicks_claimed_integration_id_integrations'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_messenger_clicks')),
    )
    op.create_index('ix_messenger_clicks_account_channel_clicked', 'messenger_clicks',
                    ['account_id', 'channel', 'clicked_at'])
    op.create_index('ix_messenger_clicks_claim', 'messenger_clicks', ['claimed_integration_id', 'claimed_talk_id'])
    op.create_index(op.f('ix_messenger_clicks_session_id'), 'messenger_clicks', ['session_id'])
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('click_window_minutes', sa.Integer(), server_default='30', nullable=False))


def downgrade():
    with op.batch_alter_table('integrations', schema=None) as batch_op:
        batch_op.drop_column('click_window_minutes')
    op.drop_index(op.f('ix_messenger_clicks_session_id'), table_name='messenger_clicks')
    op.drop_index('ix_messenger_clicks_claim', table_name='messenger_clicks')
    op.drop_index('ix_messenger_clicks_account_channel_clicked', table_name='messenger_clicks')
    op.drop_table('messenger_clicks')
