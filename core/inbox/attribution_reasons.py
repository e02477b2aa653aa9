"""Why a request was attributed as it was: the codes and English templates of attribution reasons
(see core/platform/messages.py). A reason is a sentence: the notes gathered on the way (the session field
was empty, the session was not found…) then the outcome with its target (campaign, source, site).
Catalog names are kept in the params as the request saw them, so a renamed campaign does not
rewrite history."""
from __future__ import annotations

from core.platform.messages import N_, define

# The outcome (the whole reason).
SESSION = define("attribution.session", N_("Session %(session)s from the amoCRM field: %(target)s"))
SESSION_NOTED = define("attribution.session_noted",
                       N_("Session %(session)s from the amoCRM field (%(note)s): %(target)s"))
MESSENGER = define("attribution.messenger", N_("%(notes)s. Messenger %(messenger)s: %(target)s"), sentence=True)
DEFAULT = define("attribution.default", N_("%(notes)s. By default: %(target)s"), sentence=True)
# A talk that no webhook reported, found in amoCRM's event log by reconciliation.
RECONCILED = define("attribution.reconciled",
                    N_("Found by reconciliation with amoCRM: the webhook did not arrive. %(reason)s"))

# Notes on the way (lower case: they are joined into one sentence).
FIELD_NOT_A_NUMBER = define("attribution.note.field_not_a_number", N_("the session field holds no number (%(value)s)"))
SESSION_NOT_FOUND = define("attribution.note.session_not_found", N_("session %(session)s is not found in the account"))
FIELD_EMPTY = define("attribution.note.field_empty", N_("the session field is empty"))
NO_MAPPING = define("attribution.note.no_mapping", N_("there is no mapping for the messenger %(messenger)s"))
FIELD_FROM_CONTACT = define("attribution.note.field_from_contact",
                            N_("the session field is empty in the lead, taken from the contact"))
FIELD_FROM_LEAD = define("attribution.note.field_from_lead",
                         N_("the session field is empty in the contact, taken from the lead"))

# Targets.
TO_CAMPAIGN = define("attribution.target.campaign", N_("ad campaign %(name)s"))
TO_SOURCE = define("attribution.target.source", N_("source %(name)s"))
TO_SITE = define("attribution.target.site", N_("site %(name)s"))
TO_SOURCE_AND_SITE = define("attribution.target.source_and_site", N_("%(source)s, %(site)s"))
TO_NOTHING = define("attribution.target.none", N_("not set"))
DELETED = define("attribution.target.deleted", N_("#%(id)s (deleted)"))

# Click attribution (core/inbox/click_attribution.py): a messenger chat tied to the session that clicked
# that messenger's icon on the site's chat button.
CLICK_SESSION = define("attribution.click_session", N_(
    "By the click on the %(channel)s button on the site %(ago)s before the talk began, session %(session)s: %(target)s"))
CLICK_AMBIGUOUS = define("attribution.click_ambiguous", N_(
    "%(reason)s. The click on the %(channel)s button on the site is not counted: within %(minutes)s min before the "
    "talk began it was pressed in different sessions (candidates: %(candidates)s)"))
SECONDS = define("attribution.seconds", N_("%(n)s s"))
MINUTES = define("attribution.minutes", N_("%(n)s min"))
