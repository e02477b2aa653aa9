"""Webhooks in, requests out.

- `webhooks`: amoCRM's form-encoded bodies → talk items → inbox rows (`webhook_events`), stored before we answer.
- `event_status`, `event_reasons`: the lifecycle of an inbox event and why it has its status.
- `talk_processing`: a worker's batch — claim, fetch contacts and leads in batched calls, attribute, record.
- `drain_marker`: at most one queued message per integration (a webhook that finds one waiting sends none).
- `attribution`, `click_attribution`, `attribution_reasons`: where a chat came from (session field, the click
  on the chat button, messenger mapping, default) and the sentence that says why.
- `repeat_requests`: new or repeat request, per contact and the account's window.
- `reconciliation`: closed talks no webhook told us about, found in amoCRM's event log.
- `worker_health`: is anything consuming the queue.
"""
