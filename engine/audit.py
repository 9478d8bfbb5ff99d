"""The profile audit: a change to a customer's contact, consent or opt-out fields by an import
or the API writes a `profile_changed` activity with each changed field's old and new value.
The import writes them set-based, in the transaction that writes the customers and before it
does (engine.importing.setbased.Plan.audit: one INSERT ... SELECT comparing the staged rows
with the stored ones). (Unsubscribe links and provider webhooks write their own activities,
`unsubscribed` and `opted_out`, with the reason.)"""

from __future__ import annotations

# The audited fields, in the order a summary names them.
AUDITED = ("email", "phone", "email_opt_out", "sms_opt_out", "marketing_consent")
