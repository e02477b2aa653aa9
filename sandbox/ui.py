"""Human pages: the OAuth consent page and the demo page at ``/`` (Russian, no external assets)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, redirect, render_template_string, request

from .crm import KNOWN_ORIGINS
from .errors import SandboxError
from .state import SandboxState

STYLE = """
<style>
 body{font-family:-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f4f6f8;color:#1f2d3d}
 header{background:#1f2d3d;color:#fff;padding:14px 24px}
 header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c7d1db;font-size:13px}
 main{padding:16px 24px;max-width:1200px}
 section{background:#fff;border:1px solid #dde3e9;border-radius:6px;padding:12px 16px;margin-bottom:16px}
 h2{font-size:16px;margin:0 0 10px}
 table{border-collapse:collapse;width:100%;font-size:13px}
 th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eef1f4;vertical-align:top}
 th{color:#5b6b7b;font-weight:600}
 .open{color:#0a7d32;font-weight:600} .closed{color:#8a96a3} .closing{color:#b36b00}
 .bad{color:#b3261e;font-weight:600} .good{color:#0a7d32}
 form.inline{display:inline;margin:0}
 button{background:#2d7ff9;color:#fff;border:0;border-radius:4px;padding:5px 10px;cursor:pointer;font-size:13px}
 button.secondary{background:#8a96a3} button.danger{background:#c0392b}
 label{display:block;font-size:13px;margin:6px 0 2px;color:#5b6b7b}
 input,select{padding:5px 7px;border:1px solid #c5cfd9;border-radius:4px;font-size:13px;min-width:220px}
 .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:4px 16px}
 .msg{background:#e8f4ff;border:1px solid #b6d7ff;padding:8px 12px;border-radius:4px;margin-bottom:12px}
 code{font-size:12px;background:#f0f3f6;padding:1px 4px;border-radius:3px}
 .muted{color:#8a96a3;font-size:12px}
</style>
"""

CONSENT_PAGE = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>Предоставить доступ — {{ account.account_name }}</title>
""" + STYLE + """</head><body>
<header><h1>amoCRM (песочница)</h1><p>{{ host }}</p></header>
<main><section style="max-width:520px">
 <h2>Интеграция «{{ client.name }}» запрашивает доступ</h2>
 <p>Аккаунт: <b>{{ account.account_name }}</b> ({{ account.subdomain }}, ID {{ account.account_id }})</p>
 <p class="muted">Интеграция получит доступ к данным аккаунта: сделки, контакты, беседы, вебхуки.</p>
 <form method="post" action="/oauth" class="inline">
  <input type="hidden" name="client_id" value="{{ client.client_id }}">
  {% if state is not none %}<input type="hidden" name="state" value="{{ state }}">{% endif %}
  <input type="hidden" name="mode" value="{{ mode }}">
  <button type="submit" name="decision" value="allow">Разрешить</button>
  <button type="submit" name="decision" value="deny" class="secondary">Отказать</button>
 </form>
</section></main></body></html>
"""

OAUTH_ERROR_PAGE = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>Ошибка авторизации</title>""" + STYLE + """</head><body>
<header><h1>amoCRM (песочница)</h1></header>
<main><section><h2>Интеграция не найдена</h2>
<p>Неизвестный <code>client_id</code>: <code>{{ client_id or "—" }}</code>. Проверьте ID интеграции.</p>
</section></main></body></html>
"""

HOME_PAGE = """<!DOCTYPE html>
<html lang="ru"><head><meta charset="utf-8"><title>Песочница amoCRM — {{ s.account_name }}</title>
""" + STYLE + """</head><body>
<header><h1>Песочница amoCRM: {{ s.account_name }}</h1>
<p>Поддомен <b>{{ s.subdomain }}</b> · ID аккаунта {{ s.account_id }} · адрес аккаунта <code style="background:#33475b;color:#fff">{{ base_url }}</code></p></header>
<main>
{% if msg %}<div class="msg">{{ msg }}</div>{% endif %}

<section>
<h2>Начать чат (как будто клиент написал в мессенджер)</h2>
<form method="post" action="/_sandbox/ui/chats">
 <div class="grid">
  <div><label>Имя</label><input name="name" value="Тестовый клиент"></div>
  <div><label>Телефон</label><input name="phone" placeholder="+79990000000"></div>
  <div><label>Email</label><input name="email" placeholder="client@example.ru"></div>
  <div><label>Канал (origin)</label><select name="origin">
   {% for o in origins %}<option value="{{ o }}">{{ o }}</option>{% endfor %}</select></div>
  <div><label>ID сессии (необязательно)</label><input name="session_id" placeholder="например, 123456789"></div>
  <div><label>Поле сделки для сессии</label><select name="session_field">
   {% for f in session_fields %}<option value="{{ f.id }}" {% if f.name == 'Сессия UIS' %}selected{% endif %}>{{ f.name }} ({{ f.id }})</option>{% endfor %}</select></div>
 </div>
 <p><button type="submit">Начать чат</button> <span class="muted">создаёт контакт, сделку и открытую беседу и отправляет вебхук add_talk</span></p>
</form>
</section>

<section>
<h2>Беседы</h2>
{% if talks %}
<table><tr><th>ID</th><th>Статус</th><th>Канал</th><th>Контакт</th><th>Сделка и её поля</th><th>Создана</th><th></th></tr>
{% for t in talks %}
<tr>
 <td>{{ t.talk_id }}</td>
 <td>{% if t.closing %}<span class="closing">закрывается (NPS)</span>{% elif t.is_in_work %}<span class="open">открыта</span>{% else %}<span class="closed">закрыта</span>{% endif %}
  {% if not t.is_read %}<br><span class="muted">не прочитана</span>{% endif %}</td>
 <td>{{ t.origin }}</td>
 <td>{{ t.contact_name }} <span class="muted">#{{ t.contact_id }}</span>{% for p in t.contact_values %}<br><span class="muted">{{ p }}</span>{% endfor %}</td>
 <td>{% if t.entity_id %}#{{ t.entity_id }}{% for v in t.lead_values %}<br><span class="muted">{{ v }}</span>{% endfor %}{% else %}—{% endif %}</td>
 <td>{{ t.created }}</td>
 <td>{% if t.is_in_work %}
   <form class="inline" method="post" action="/_sandbox/ui/talks/{{ t.talk_id }}/close"><button type="submit" class="danger">Закрыть беседу</button></form>
   {% if not t.is_read %}<form class="inline" method="post" action="/_sandbox/ui/talks/{{ t.talk_id }}/read"><button type="submit" class="secondary">Прочитать</button></form>{% endif %}
 {% endif %}</td>
</tr>{% endfor %}</table>
{% else %}<p class="muted">Бесед пока нет.</p>{% endif %}
</section>

<section>
<h2>Вебхуки аккаунта</h2>
{% if hooks %}
<table><tr><th>ID</th><th>Адрес</th><th>События</th><th>Состояние</th><th>Ошибок за 2 ч</th><th></th></tr>
{% for h in hooks %}<tr><td>{{ h.id }}</td><td><code>{{ h.destination }}</code></td><td>{{ h.settings|join(", ") }}</td>
 <td>{% if h.disabled %}<span class="bad">отключён</span>{% else %}<span class="good">активен</span>{% endif %}</td>
 <td>{{ h.invalid_replies_in_window }}</td>
 <td><form class="inline" method="post" action="/_sandbox/ui/webhooks/{{ h.id }}/{{ 'enable' if h.disabled else 'disable' }}">
   <button type="submit" class="secondary">{{ 'Включить' if h.disabled else 'Отключить' }}</button></form></td></tr>{% endfor %}
</table>
{% else %}<p class="muted">Нет зарегистрированных вебхуков (интеграция регистрирует их через POST /api/v4/webhooks).</p>{% endif %}
</section>

<section>
<h2>Последние отправки вебхуков</h2>
{% if deliveries %}
<table><tr><th>№</th><th>Время</th><th>Событие</th><th>Беседы</th><th>Адрес</th><th>Ответ</th><th>мс</th></tr>
{% for d in deliveries %}<tr><td>{{ d.id }}</td><td>{{ d.time }}</td><td>{{ d.event }}</td><td>{{ d.talk_ids|join(", ") }}</td>
 <td><code>{{ d.destination }}</code></td>
 <td>{% if d.status == 'pending' %}<span class="muted">в очереди</span>{% elif d.valid %}<span class="good">{{ d.status_code }}</span>{% else %}<span class="bad">{{ d.status_code or d.error }}</span>{% endif %}</td>
 <td>{{ d.duration_ms if d.duration_ms is not none else "" }}</td></tr>{% endfor %}
</table>
{% else %}<p class="muted">Отправок пока не было.</p>{% endif %}
</section>

<section>
<h2>Интеграции (OAuth)</h2>
{% if clients %}
<table><tr><th>Название</th><th>client_id</th><th>Redirect URI</th><th>Живых токенов</th></tr>
{% for c in clients %}<tr><td>{{ c.name }}</td><td><code>{{ c.client_id }}</code></td><td><code>{{ c.redirect_uri }}</code></td><td>{{ c.access_tokens_live }}</td></tr>{% endfor %}
</table>
<form class="inline" method="post" action="/_sandbox/ui/revoke"><p><button type="submit" class="danger">Отозвать все токены (как отключение интеграции)</button></p></form>
{% else %}<p class="muted">Нет зарегистрированных интеграций: POST /_sandbox/clients или флаги --client-id/--client-secret/--redirect-uri.</p>{% endif %}
<p class="muted">Ограничение: {{ s.rate_limit }} запросов в секунду · задержка {{ s.latency_ms }} мс · доля ошибок {{ s.error_rate }}{% if s.blocked %} · <span class="bad">аккаунт заблокирован (403)</span>{% endif %}</p>
</section>
<p class="muted"><a href="/">Обновить</a> · <a href="/site/">демо-сайт клиента с кнопкой чата</a> · управление: <code>/_sandbox/settings</code>, <code>/_sandbox/stats</code>, <code>/_sandbox/deliveries</code></p>
</main></body></html>
"""


def _fmt_time(ts: float | int | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%d.%m.%Y %H:%M:%S")


def _values_text(cf: list[dict[str, Any]] | None) -> list[str]:
    out = []
    for f in cf or []:
        vals = ", ".join(str(v.get("value")) for v in f.get("values", []))
        out.append(f"{f.get('field_name')}: {vals}")
    return out


def register_ui(app: Flask, st: SandboxState) -> None:
    def back(msg: str) -> Response:
        return redirect("/?" + urlencode({"msg": msg}), code=303)

    @app.get("/")
    def home() -> str:
        with st.lock:
            talks = []
            for t in sorted(st.talks.values(), key=lambda t: t["talk_id"], reverse=True)[:200]:
                contact = st.contacts.get(t["contact_id"])
                lead = st.leads.get(t["entity_id"]) if t["entity_id"] else None
                talks.append(dict(
                    t, created=_fmt_time(t["created_at"]),
                    contact_name=contact["name"] if contact else "?",
                    contact_values=_values_text(st.cf_json("contacts", contact["cf"])) if contact else [],
                    lead_values=_values_text(st.cf_json("leads", lead["cf"])) if lead else [],
                ))
            session_fields = [f for f in st.fields["leads"] if f["type"] in ("text", "textarea", "numeric")]
            settings = dict(st.settings)
            base_url = st.base_url
        hooks = st.list_webhooks(internal=True)
        deliveries = [dict(d, time=_fmt_time(d["sent_at"] or d["created_at"]))
                      for d in reversed(st.list_deliveries()[-30:])]
        return render_template_string(
            HOME_PAGE, s=settings, base_url=base_url, talks=talks, hooks=hooks, deliveries=deliveries,
            clients=st.list_clients(), origins=KNOWN_ORIGINS, session_fields=session_fields,
            msg=request.args.get("msg"),
        )

    @app.post("/_sandbox/ui/chats")
    def ui_chat() -> Response:
        f = request.form
        origin = f.get("origin") or "telegram"
        lead_cf = {}
        if f.get("session_id", "").strip():
            lead_cf[f.get("session_field", "Сессия UIS")] = f["session_id"].strip()
        try:
            res = st.create_chat(
                contact={"name": f.get("name"), "phones": [f["phone"]] if f.get("phone") else None,
                         "emails": [f["email"]] if f.get("email") else None},
                lead={"custom_fields": lead_cf}, origin=origin,
            )
        except SandboxError as exc:
            return back(f"Ошибка: {exc.message}")
        sent = ", ".join(str(d["status_code"] or d["error"] or d["status"]) for d in res["deliveries"]) or "нет подписчиков"
        return back(f"Беседа {res['talk_id']} создана (сделка {res['lead_id']}). Вебхук add_talk: {sent}")

    @app.post("/_sandbox/ui/talks/<int:talk_id>/close")
    def ui_close(talk_id: int) -> Response:
        try:
            res = st.close_talk(talk_id, force_close=True, control=True)
        except SandboxError as exc:
            return back(f"Ошибка: {exc.message}")
        sent = ", ".join(str(d["status_code"] or d["error"] or d["status"]) for d in res["deliveries"]) or "нет подписчиков"
        return back(f"Беседа {talk_id} закрыта. Вебхук update_talk: {sent}")

    @app.post("/_sandbox/ui/talks/<int:talk_id>/read")
    def ui_read(talk_id: int) -> Response:
        try:
            st.read_talk(talk_id)
        except SandboxError as exc:
            return back(f"Ошибка: {exc.message}")
        return back(f"Беседа {talk_id} прочитана.")

    @app.post("/_sandbox/ui/webhooks/<int:hook_id>/<action>")
    def ui_hook(hook_id: int, action: str) -> Response:
        if action not in ("enable", "disable"):
            return back("Неизвестное действие")
        try:
            st.set_webhook_disabled(hook_id, action == "disable")
        except SandboxError as exc:
            return back(f"Ошибка: {exc.message}")
        return back(f"Вебхук {hook_id} {'отключён' if action == 'disable' else 'включён'}.")

    @app.post("/_sandbox/ui/revoke")
    def ui_revoke() -> Response:
        n = st.revoke()
        return back(f"Отозвано токенов доступа: {n}. API отвечает 401, refresh — 400.")
