"""Why an inbox event has its status (`webhook_events.status_reason_code` + `_params`), as messages
(see core/platform/messages.py). The status itself is a code already; these say why, for a person."""
from __future__ import annotations

from core.platform.messages import N_, define

TALK_OPEN = define("event.talk_open", N_("the talk is not finished (is_in_work≠0)"))
INTEGRATION_INACTIVE = define("event.integration_inactive", N_("the integration is not active"))
SWITCHED_OFF_BEFORE_PROCESSING = define("event.switched_off_before_processing",
                                        N_("the integration was switched off before processing"))
CHANNEL_EXCLUDED = define("event.channel_excluded",
                          N_("the channel %(channel)s is not passed: switch it on in the integration settings"))
NEEDS_REAUTH = define("event.needs_reauth", N_("amoCRM must be reconnected"))
ALREADY_RECORDED = define("event.already_recorded", N_("a request for this talk is already recorded"))
FAILED_AFTER_ATTEMPTS = define("event.failed_after_attempts", N_("failed after %(attempts)s attempts"))
RETRIES_EXHAUSTED = define("event.retries_exhausted", N_("the retries ran out"))
REPLAY_REQUESTED = define("event.replay_requested", N_("replayed on request"))
WORKER_INTERRUPTED = define("event.worker_interrupted", N_("the worker was interrupted %(attempts)s times"))
WORKER_RELEASED = define("event.worker_released",
                         N_("the worker was interrupted while processing; the event is processed again"))
