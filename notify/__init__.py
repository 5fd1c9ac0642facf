"""`fraudctl notify`: CRITICAL alerts (by default) from `fraud_alerts` to webhooks and e-mail,
once per `alert_id` and destination. See docs/notifications.md.

Modules: `alerts` (decoding, severity filter), `messages` (what a notification says),
`retry` (Retry-After, back-off, token bucket), `secrets` (webhook URLs and SMTP credentials from
the environment), `destinations` (webhook, SMTP), `claims` (the once-only record in MongoDB),
`delivery` (claim, send, retry, settle one notification), `metrics` (Prometheus),
`consumer` (the Kafka loop), `cli` (the verb).
"""
