"""reasons as message codes: attribution and event status reasons stored as code + JSON params

Revision ID: 0009
Revises: 0007

`requests.attribution_reason` and `webhook_events.status_reason` held Russian sentences. They become
`*_reason_code` + `*_reason_params` (core/platform/messages.py), said in the reader's language. Existing rows
are parsed back into codes where their words are the ones core wrote; every converted row keeps its
original words in the `text` param, and a reason that does not parse is stored as the `legacy`
code with only that `text` (shown as it was), so nothing is lost. The patterns below are frozen
here: they describe what earlier releases wrote, not what core says today.
"""
import json
import re

from alembic import op
import sqlalchemy as sa

from core.platform.db import JSONType

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BATCH = 1000

# --- what earlier releases wrote, in Russian ----------------------------------------------------

_EVENT_EXACT = {
    "беседа не завершена (is_in_work≠0)": "event.talk_open",
    "интеграция не активна": "event.integration_inactive",
    "интеграция выключена до обработки": "event.switched_off_before_processing",
    "нужно переподключить amoCRM": "event.needs_reauth",
    "обращение по этой беседе уже записано": "event.already_recorded",
    "повторы исчерпаны": "event.retries_exhausted",
    "повтор по запросу": "event.replay_requested",
}
_FAILED_AFTER = re.compile(r"не удалось после (\d+) попыток\Z")
_CHANNEL_EXCLUDED = re.compile(r"канал (.+) не передаётся: включите его в настройках интеграции\Z")
_CHANNELS_RU = {
    "Онлайн-чат на сайте": "site_chat", "Telegram": "telegram", "WhatsApp": "whatsapp", "Instagram": "instagram",
    "Facebook Messenger": "facebook", "ВКонтакте": "vk", "Viber": "viber", "Авито": "avito", "TikTok": "tiktok",
    "Mercado Libre": "mercadolibre", "Lazada": "lazada", "Apple Messages for Business": "apple_messages",
    "SMS": "sms", "E-mail": "email", "Другой канал": "other", "Канал не известен": "unknown",
}

_RECONCILED = "Найдено сверкой с amoCRM: вебхук не пришёл. "
_SESSION = re.compile(r"Сессия (\d+) из поля amoCRM(?: \((.+)\))?: (.+)\Z", re.S)
_MESSENGER = re.compile(r"(.+)\. Мессенджер (.+?): (.+)\Z", re.S)
_DEFAULT = re.compile(r"(.+)\. По умолчанию: (.+)\Z", re.S)
_NOTES = [
    (re.compile(r"в поле сессии не число \((.*)\)\Z", re.S), "attribution.note.field_not_a_number", ("value",)),
    (re.compile(r"сессия (\d+) не найдена в аккаунте\Z"), "attribution.note.session_not_found", ("session",)),
    (re.compile(r"поле сессии пусто\Z"), "attribution.note.field_empty", ()),
    (re.compile(r"для мессенджера (.+) нет соответствия\Z", re.S), "attribution.note.no_mapping", ("messenger",)),
    (re.compile(r"поле сессии пусто в сделке, взято из контакта\Z"), "attribution.note.field_from_contact", ()),
    (re.compile(r"поле сессии пусто в контакте, взято из сделки\Z"), "attribution.note.field_from_lead", ()),
]
_DELETED = re.compile(r"#(\d+) \(удалена\)\Z")


class Unknown(ValueError):
    """Words no release wrote in this shape: kept as `legacy`."""


def _msg(code, **params):
    return {"code": code, "params": params}


def _number(text):
    return int(text) if text.isdigit() else text


def _name(text):
    deleted = _DELETED.match(text)
    return _msg("attribution.target.deleted", id=int(deleted.group(1))) if deleted else text


def _target(text):
    if text == "не задано":
        return _msg("attribution.target.none")
    if text.startswith("РК "):
        return _msg("attribution.target.campaign", name=_name(text[3:]))
    source = site = None
    rest = text
    if rest.startswith("источник "):
        source_text, sep, rest = rest[len("источник "):].partition(", сайт ")
        source = _msg("attribution.target.source", name=_name(source_text))
        rest = ("сайт " + rest) if sep else ""
    if rest.startswith("сайт "):
        site = _msg("attribution.target.site", name=rest[len("сайт "):])
    elif rest:
        raise Unknown(text)
    if source and site:
        return _msg("attribution.target.source_and_site", source=source, site=site)
    if source or site:
        return source or site
    raise Unknown(text)


def _note(text):
    for pattern, code, names in _NOTES:
        match = pattern.match(text)
        if match:
            values = {n: (_number(v) if n == "session" else v) for n, v in zip(names, match.groups())}
            return _msg(code, **values)
    raise Unknown(text)


def _notes(text):
    parts = text.split("; ")
    parts[0] = parts[0][:1].lower() + parts[0][1:]  # the sentence raised only the first letter
    return [_note(p) for p in parts]


def _attribution(text):
    if text.startswith(_RECONCILED):
        return _msg("attribution.reconciled", reason=_attribution(text[len(_RECONCILED):]))
    match = _SESSION.match(text)
    if match:
        session, note, target = match.groups()
        if note:
            return _msg("attribution.session_noted", session=int(session), note=_note(note), target=_target(target))
        return _msg("attribution.session", session=int(session), target=_target(target))
    match = _MESSENGER.match(text)
    if match:
        notes, messenger, target = match.groups()
        return _msg("attribution.messenger", notes=_notes(notes), messenger=messenger, target=_target(target))
    match = _DEFAULT.match(text)
    if match:
        notes, target = match.groups()
        return _msg("attribution.default", notes=_notes(notes), target=_target(target))
    raise Unknown(text)


def _event(text):
    if text in _EVENT_EXACT:
        return _msg(_EVENT_EXACT[text])
    match = _FAILED_AFTER.match(text)
    if match:
        return _msg("event.failed_after_attempts", attempts=int(match.group(1)))
    match = _CHANNEL_EXCLUDED.match(text)
    if match and match.group(1) in _CHANNELS_RU:
        return _msg("event.channel_excluded", channel=_msg(f"channel.{_CHANNELS_RU[match.group(1)]}"))
    raise Unknown(text)


def convert(text, parse):
    """(code, params) for stored words; the words themselves are always kept in `text`."""
    if text is None:
        return None, None
    try:
        message = parse(text)
    except Unknown:
        message = _msg("legacy")
    message["params"]["text"] = text
    return message["code"], message["params"]


def convert_attribution(text):
    return convert(text, _attribution)


def convert_event(text):
    return convert(text, _event)


# --- the schema -----------------------------------------------------------------------------------

def _fill(table, old, code_column, params_column, parse):
    bind = op.get_bind()
    t = sa.table(table, sa.column("id", sa.BigInteger), sa.column(old, sa.Text),
                 sa.column(code_column, sa.String), sa.column(params_column, JSONType))
    last = 0
    while True:
        rows = bind.execute(sa.select(t.c.id, t.c[old]).where(t.c.id > last, t.c[old].isnot(None))
                            .order_by(t.c.id).limit(BATCH)).all()
        if not rows:
            return
        for row_id, text in rows:
            code, params = convert(text, parse)
            bind.execute(t.update().where(t.c.id == row_id).values({code_column: code, params_column: params}))
        last = rows[-1][0]


def upgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attribution_reason_code', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('attribution_reason_params', JSONType, nullable=True))
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason_code', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('status_reason_params', JSONType, nullable=True))

    _fill('requests', 'attribution_reason', 'attribution_reason_code', 'attribution_reason_params', _attribution)
    _fill('webhook_events', 'status_reason', 'status_reason_code', 'status_reason_params', _event)

    bind = op.get_bind()
    requests = sa.table('requests', sa.column('attribution_reason_code', sa.String))
    bind.execute(requests.update().where(requests.c.attribution_reason_code.is_(None))
                 .values(attribution_reason_code='legacy'))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.alter_column('attribution_reason_code', existing_type=sa.String(length=80), nullable=False)
        batch_op.drop_column('attribution_reason')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('status_reason')


def _words(params):
    """The stored words back for a downgrade: the kept `text`, else nothing better than the code."""
    if isinstance(params, str):
        params = json.loads(params)
    return (params or {}).get("text")


def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attribution_reason', sa.String(length=500), nullable=True))
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_reason', sa.String(length=300), nullable=True))
    bind = op.get_bind()
    for table, old, code_column, params_column, size in (
            ('requests', 'attribution_reason', 'attribution_reason_code', 'attribution_reason_params', 500),
            ('webhook_events', 'status_reason', 'status_reason_code', 'status_reason_params', 300)):
        t = sa.table(table, sa.column("id", sa.BigInteger), sa.column(old, sa.Text),
                     sa.column(code_column, sa.String), sa.column(params_column, JSONType))
        for row_id, code, params in bind.execute(sa.select(t.c.id, t.c[code_column], t.c[params_column])
                                                 .where(t.c[code_column].isnot(None))).all():
            bind.execute(t.update().where(t.c.id == row_id).values({old: (_words(params) or code)[:size]}))
    bind.execute(sa.text("UPDATE requests SET attribution_reason = '' WHERE attribution_reason IS NULL"))
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.alter_column('attribution_reason', existing_type=sa.String(length=500), nullable=False)
        batch_op.drop_column('attribution_reason_params')
        batch_op.drop_column('attribution_reason_code')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('status_reason_params')
        batch_op.drop_column('status_reason_code')
