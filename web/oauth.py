"""`GET /oauth/amocrm/callback`: where amoCRM sends the admin back after the consent screen."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template, request

from core.oauth_connect import ConnectError, complete_connect
from web.extensions import csrf

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)
csrf.exempt(bp)

# The admin reads these (Russian first); the API keeps core's English messages.
MESSAGES_RU = {
    "yourdomain": "Замените YOURDOMAIN в полях «AmoCRM URL» и «Token URL» доменом вашего аккаунта amoCRM.",
    "host_not_allowed": "Этот адрес не похож на аккаунт amoCRM или Kommo, подключение к нему запрещено (AMOCRM_ALLOWED_HOSTS).",
    "no_client": "У интеграции не заданы client id и client secret.",
    "unknown_state": "Ссылка подключения неизвестна. Начните подключение заново из настроек интеграции.",
    "state_reused": "Эта ссылка подключения уже использована. Начните подключение заново.",
    "state_expired": "Подключение длилось дольше 30 минут. Начните его заново.",
    "denied": "Доступ в amoCRM не предоставлен. Подключите снова и нажмите «Разрешить».",
    "bad_callback": "Ответ amoCRM неполон: нет кода авторизации или адреса аккаунта.",
    "code_rejected": "amoCRM отклонил код авторизации (он действует 20 минут и только один раз). Подключите снова.",
    "amocrm_unavailable": "amoCRM не ответил. Повторите через минуту.",
}


@bp.get("/oauth/amocrm/callback")
def callback():
    services = current_app.extensions["chatsource.services"]
    try:
        result = complete_connect(
            services,
            state=request.args.get("state"),
            code=request.args.get("code"),
            referer=request.args.get("referer"),
            error=request.args.get("error"),
        )
    except ConnectError as exc:
        log.info("amoCRM connect failed: %s (integration %s)", exc.code, exc.integration_id)
        return render_template(
            "oauth_result.html", ok=False, code=exc.code, message=MESSAGES_RU.get(exc.code, exc.message),
            detail=exc.message, integration_id=exc.integration_id, return_to=None,
        ), 400
    if result.events_to_enqueue:
        from workers.actors import enqueue_talk_events

        enqueue_talk_events(result.events_to_enqueue)
    return render_template(
        "oauth_result.html", ok=True, code="connected", account_name=result.account_name,
        webhook_registered=result.webhook_registered, warnings=result.warnings,
        integration_id=result.integration_id, return_to=result.return_to,
    )
