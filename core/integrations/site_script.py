"""«Скрипт для вашего сайта» (spec step 7): generated per integration, shown after it is saved.

The site owner installs it on every page, below our main tracking code (`core.tracking.collect`). It waits
for our session id and hands it to amoCRM's chat button, which writes it into the custom field the
integration reads (`session_field_id`) of the lead — or of the contact — that the chat creates:

    amo_social_button.setMeta({lead: {custom_fields: [{id: FIELD_ID, values: [{value: "SESSION_ID"}]}]}})

on amoCRM, `crm_plugin.setMeta(...)` on Kommo (https://www.amocrm.ru/developers/content/web_sdk/crm_plugin: the v2 shape `id`, not `field_id`).

Order does not matter: our tracking code or amoCRM's button may load first, and the button may
appear late (its snippet lower on the page, a tag manager, lazy loading). The script listens to
`Chatsource.onReady` and the `chatsource:session` event, and looks for the button every 250 ms
for the first 10 s, then every 2 s; it calls `setMeta` once per (button object, session id), so
again when the session changes (a new campaign, a return after 30 idle minutes) or the button
object is replaced. ES5, no dependencies, every call guarded: it can never break the page.

Live installations show the first `setMeta` is not always applied (Roistat's published code waits for the
button, some sites re-send it every few seconds, a Kommo integrator found its writes unreliable), so
the script also hands the session again the moment it matters: when the visitor opens the chat or
picks a messenger. It subscribes through the button's command queue, `amoSocialButton('onButtonClick',
fn)` and `('onChatShow', fn)` (Kommo: `crmPlugin(...)`), as soon as the queue exists, once per queue.

The same `onButtonClick(service, link)` reports the click to our tracking code
(`Chatsource.messengerClick`, a `messenger_click` on `/t/collect`): a Telegram or WhatsApp chat happens
in the app, where setMeta does not reach, and core.inbox.click_attribution ties it back to the session.
Kommo's `crmPlugin('onButtonClick', fn)` is assumed to call back the same way (not documented).

What amoCRM does not document: whether `setMeta` merges with or replaces metadata the
site set itself, and that it must run before the visitor's first message (the lead is made then).
"""
from __future__ import annotations

import json
import re

from core.models import Integration
from core.platform.messages import N_, Translations, define, render

# The snippet's comments, in the language of the admin who copies it.
TITLE = define("site_script.title", N_("Chatsource → amoCRM: the script for your site."))
TITLE_NAMED = define("site_script.title_named", N_("Chatsource → amoCRM: the script for your site (integration «%(name)s»)."))
INSTALL = define("site_script.install", N_("Install it on every page of the site below the main Chatsource tracking code."))
FIELD_OF = {"lead": define("site_script.field_of_lead", N_("the session field of the lead in amoCRM")),
            "contact": define("site_script.field_of_contact", N_("the session field of the contact in amoCRM"))}

BUTTON_OBJECTS = ("amo_social_button", "crm_plugin")  # amoCRM, Kommo
BUTTON_QUEUES = ("amoSocialButton", "crmPlugin")  # their command queues (callbacks are registered there)
REAPPLY_ON = ("onButtonClick", "onChatShow")  # a messenger chosen, the chat opened


def _comment_safe(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"-{2,}|[<>]", " ", text or "")).strip()[:200]


def render_site_script(field_id: int, entity: str = "lead", integration_name: str | None = None,
                       translations: Translations | None = None) -> str:
    """The script for a custom field of the lead (`entity="lead"`) or the contact (`"contact"`); its
    comments in the language of `translations` (English without)."""
    if entity not in ("lead", "contact"):
        raise ValueError("entity must be 'lead' or 'contact'")
    if isinstance(field_id, bool) or not isinstance(field_id, int) or field_id <= 0:
        raise ValueError("field_id must be an amoCRM custom field id")
    name = _comment_safe(integration_name or "")
    title = render(TITLE_NAMED(name=name) if name else TITLE(), translations)
    install = _comment_safe(render(INSTALL(), translations))
    field_note = render(FIELD_OF[entity](), translations).replace("\n", " ")
    return (
        f"<!-- {_comment_safe(title)}\n"
        f"     {install} -->\n"
        "<script>\n"
        "(function (w) {\n"
        f"  var FIELD_ID = {int(field_id)}, ENTITY = {json.dumps(entity)}; // {field_note}\n"
        f"  var BUTTONS = {json.dumps(list(BUTTON_OBJECTS))}, handed = [];\n"
        f"  var QUEUES = {json.dumps(list(BUTTON_QUEUES))}, EVENTS = {json.dumps(list(REAPPLY_ON))}, hooked = [];\n"
        "  function meta(id) {\n"
        "    var m = {};\n"
        "    m[ENTITY] = {custom_fields: [{id: FIELD_ID, values: [{value: id}]}]};\n"
        "    return m;\n"
        "  }\n"
        "  function handedTo(b) {\n"
        "    for (var i = 0; i < handed.length; i++) if (handed[i][0] === b) return handed[i];\n"
        "    return null;\n"
        "  }\n"
        "  function hand(again) {\n"
        "    var cs = w.Chatsource, id = cs && typeof cs.getSessionId === 'function' ? cs.getSessionId() : null;\n"
        "    if (!id) return;\n"
        "    id = String(id);\n"
        "    for (var i = 0; i < BUTTONS.length; i++) {\n"
        "      var b = w[BUTTONS[i]], h = b && handedTo(b);\n"
        "      if (!b || typeof b.setMeta !== 'function' || (h && h[1] === id && again !== true)) continue;\n"
        "      try {\n"
        "        b.setMeta(meta(id));\n"
        "        if (h) h[1] = id; else handed.push([b, id]);\n"
        "      } catch (e) {}\n"
        "    }\n"
        "  }\n"
        "  function handAgain() { hand(true); }\n"
        "  // нажат мессенджер: беседа пойдёт в приложении, куда setMeta не доходит, сообщаем о клике\n"
        "  // (один раз: кнопка могла получить подписку и из очереди, и после загрузки)\n"
        "  var lastClick = ['', 0];\n"
        "  function clicked(service, link) {\n"
        "    var cs = w.Chatsource, at = new Date().getTime();\n"
        "    if (String(service) === lastClick[0] && at - lastClick[1] < 1000) return;\n"
        "    lastClick = [String(service), at];\n"
        "    try { if (cs && typeof cs.messengerClick === 'function') cs.messengerClick(service, link); } catch (e) {}\n"
        "  }\n"
        "  function hook() {\n"
        "    for (var i = 0; i < QUEUES.length; i++) {\n"
        "      var q = w[QUEUES[i]], seen = false;\n"
        "      if (typeof q !== 'function') continue;\n"
        "      for (var j = 0; j < hooked.length; j++) if (hooked[j] === q) seen = true;\n"
        "      if (seen) continue;\n"
        "      hooked.push(q);\n"
        "      for (var k = 0; k < EVENTS.length; k++) try { q(EVENTS[k], handAgain); } catch (e) {}\n"
        "      try { q('onButtonClick', clicked); } catch (e) {}\n"
        "    }\n"
        "  }\n"
        "  if (w.addEventListener) w.addEventListener('chatsource:session', function () { hand(); });\n"
        "  if (w.Chatsource && typeof w.Chatsource.onReady === 'function') w.Chatsource.onReady(function () { hand(); });\n"
        "  var n = 0;\n"
        "  (function tick() { hook(); hand(); setTimeout(tick, ++n < 40 ? 250 : 2000); })();\n"
        "})(window);\n"
        "</script>"
    )


def site_script(services, integration: Integration, translations: Translations | None = None) -> str | None:
    """The integration's script, or None until its session custom field is chosen (step 3)."""
    if not integration.session_field_id:
        return None
    entity = "lead" if integration.session_field_entity == "leads" else "contact"
    return render_site_script(int(integration.session_field_id), entity, integration.name, translations)
