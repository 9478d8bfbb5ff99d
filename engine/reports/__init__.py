"""Reports: what the outbox sent and what the bonus ledger booked, as SQL aggregates.

- `messages`: messages by day (in the workspace's time zone), campaign, channel and status,
  with SMS parts and credits used.
- `points`: bonus ledger movements found by description, legal entity, campaign, customer,
  kind and dates, paged by keyset, with totals per kind over the whole filter.
- `campaign_runs`: one campaign's runs over time: reached, sent, skipped by reason, points
  awarded and expired.
"""
