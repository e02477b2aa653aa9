"""tracking: the entrance page title, page views, and the index of the tracking endpoint's lookup

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('visitor_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entrance_title', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('page_views', sa.Integer(), server_default='1', nullable=False))
        batch_op.create_index('ix_visitor_sessions_site_visitor_activity',
                              ['site_id', 'visitor_id', 'last_activity_at'], unique=False)


def downgrade():
    with op.batch_alter_table('visitor_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_visitor_sessions_site_visitor_activity')
        batch_op.drop_column('page_views')
        batch_op.drop_column('entrance_title')
