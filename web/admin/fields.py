"""Form fields of the admin: the condition-group editor of ad campaigns and sources."""
from __future__ import annotations

import json

from flask_babel import gettext as _
from markupsafe import Markup, escape
from wtforms import Field
from wtforms.validators import ValidationError

from core.platform.text import N_
from core.tracking.conditions import CONDITION_OPS, CONDITION_PARAMS, ConditionError, validate_conditions
from web.admin.messages import translate

PARAM_LABELS = {
    "entrance_page": N_("Entrance page"),
    "referrer": N_("Referrer"),
    "referrer_domain": N_("Referrer domain"),
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "channel": N_("Channel"),
    "search_engine": N_("Search engine"),
    "gclid": "gclid",
    "yclid": "yclid",
}
OP_LABELS = {"eq": N_("equals"), "contains": N_("contains"), "regex": N_("matches regex")}


def editor_config() -> dict:
    """Labels for the JavaScript editor, in the current language."""
    return {
        "params": [[p, _(PARAM_LABELS.get(p, p))] for p in CONDITION_PARAMS],
        "ops": [[o, _(OP_LABELS[o])] for o in CONDITION_OPS],
        "text": {
            "group": _("Group %(n)s: all conditions hold", n="{n}"),
            "or": _("or"),
            "addCondition": _("+ condition"),
            "addGroup": _("+ group of conditions (OR)"),
            "exclude": _("exclude"),
            "remove": _("Remove"),
            "value": _("value"),
            "empty": _("No conditions: the rule takes no sessions. Add a group."),
        },
    }


class ConditionsWidget:
    """The JSON textarea (what is posted) inside a box the script turns into the table editor. A
    rejected rule keeps the box `is-invalid` (so Bootstrap shows the message) and names the condition
    to highlight (`data-error-path`: group, condition, field)."""

    def __call__(self, field, **kwargs):
        config = json.dumps(editor_config(), ensure_ascii=False)
        invalid = "is-invalid" in kwargs.get("class", "")
        textarea = Markup('<textarea class="form-control cs-conditions-json{invalid}" id="{id}" name="{name}" rows="6" spellcheck="false">{value}</textarea>').format(
            id=field.id, name=field.name, value=field._value(), invalid=" is-invalid" if invalid else "")
        hint = escape(_('Rules as JSON: [[{"param": "utm_source", "op": "eq", "value": "yandex", "exclude": false}]]'))
        path = ",".join(str(p) for p in field.error_path) if invalid and field.error_path else ""
        return Markup('<div class="cs-conditions{invalid}" data-config="{config}" data-error-path="{path}">{textarea}'
                      '<small class="form-text text-muted cs-conditions-fallback">{hint}</small></div>').format(
            config=config, textarea=textarea, hint=hint, path=path, invalid=" is-invalid" if invalid else "")


class ConditionsField(Field):
    """Condition groups (OR) of conditions (AND), edited as a table by `admin.js` and posted as JSON;
    checked by `core.tracking.conditions.validate_conditions`, so a bad regex is a form error."""

    widget = ConditionsWidget()

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self._raw = None
        self.error_path: tuple = ()

    def _value(self):
        if self._raw is not None:
            return self._raw
        return json.dumps(self.data or [], ensure_ascii=False)

    def process_formdata(self, valuelist):
        if valuelist:
            self._raw = valuelist[0] or ""
            self.data = self._raw

    def pre_validate(self, form):
        try:
            self.data = validate_conditions(self.data)
        except ConditionError as exc:
            self.error_path = exc.path
            raise ValidationError(translate(exc)) from None

    def populate_obj(self, obj, name):
        setattr(obj, name, self.data or [])
