"""one language, per-user columns (issue 15 items 9 and 14)

Revision ID: 0017
Revises: 0014

- users.report_columns: the Raw data columns a user hid and their order (`{"order": [...], "hidden": [...]}`),
  kept on the server so they follow the user to another browser.
- webhook_events: the sweeper wrote «рабочий процесс прервался; повтор» into `error`; it now says so
  as the status reason `event.worker_released` (code + params, rendered in the reader's language).
  Rows with those words get the code (a waiting event) and lose the words.
- requests: attribution reasons said the site chat and e-mail as the English words «Online chat» and
  «E-mail» (`messenger` params); they become the channels' messages, rendered in the reader's language.
  Only those params are updated (no key column of the roll-up changes, so its triggers leave it alone).
"""
import json

from alembic import op
import sqlalchemy as sa

from core.platform.db import JSONType

revision = '0017'
down_revision = '0015'
branch_labels = None
depends_on = None

INTERRUPTED = "рабочий процесс прервался; повтор"
_CHANNEL_OF = {"Online chat": "site_chat", "E-mail": "email"}


def _messenger_params(value):
    """`value` with every `messenger` param naming the site chat or e-mail as its channel's message."""
    if isinstance(value, dict):
        return {k: ({"code": f"channel.{_CHANNEL_OF[v]}", "params": {}}
                    if k == "messenger" and isinstance(v, str) and v in _CHANNEL_OF else _messenger_params(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_messenger_params(v) for v in value]
    return value


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('report_columns', JSONType, nullable=True))

    connection = op.get_bind()
    events = sa.table('webhook_events', sa.column('id', sa.Integer), sa.column('status', sa.String),
                      sa.column('error', sa.Text), sa.column('status_reason_code', sa.String),
                      sa.column('status_reason_params', JSONType))
    connection.execute(events.update().where(events.c.error == INTERRUPTED, events.c.status.in_(("received", "processing")))
                       .values(status_reason_code="event.worker_released", status_reason_params={}))
    connection.execute(events.update().where(events.c.error == INTERRUPTED).values(error=None))

    requests = sa.table('requests', sa.column('id', sa.Integer), sa.column('attribution_reason_params', JSONType))
    text = sa.cast(requests.c.attribution_reason_params, sa.Text)
    rows = connection.execute(sa.select(requests.c.id, requests.c.attribution_reason_params)
                              .where(sa.or_(text.like('%"Online chat"%'), text.like('%"E-mail"%')))).all()
    for rid, params in rows:
        params = json.loads(params) if isinstance(params, str) else params
        new = _messenger_params(params)
        if new != params:
            connection.execute(requests.update().where(requests.c.id == rid).values(attribution_reason_params=new))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('report_columns')
