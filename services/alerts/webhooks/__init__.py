"""Signed webhooks per duty team (Standard Webhooks), fed by the team feed.

Why it is shaped this way:

* **The team feed is the only source.** Live processing writes a ``team_feed`` row for every
  alert event that reaches a team; a rebuild, replay or dry run writes none, so none of them
  can send a request. Each endpoint follows its team's feed from a cursor (xid, seq), reading
  only rows of transactions older than every one still running (``xid <
  pg_snapshot_xmin``): a row committed late with a smaller seq is never skipped.
* **Deliveries are rows** (one per endpoint and alert event, made in the transaction that
  moves the cursor), so nothing decided is lost in a restart, each is attempted on its own
  schedule, and its id is the ``webhook-id`` a receiver de-duplicates by.
* **Attempts are leased, not locked**: no transaction is held across an HTTP request, and a
  dispatcher that dies mid-attempt leaves the delivery to be tried again. Receivers see
  at-least-once delivery, never a silent loss.
* **Pure where it can be**: signatures (``signing``), the retry schedule and what an answer
  means (``schedule``) and the body (``payload``) take their inputs and the time as
  arguments; ``store`` is the PostgreSQL adapter, ``dispatcher`` the loop, ``endpoints`` and
  ``cli`` the operator's commands.
* **Nothing personal in logs or attempt records**: ids, status codes and failure classes
  only; never a URL (its query may hold a token), a body, a header or a secret.
* **An alert is never left with nobody**: when a raised or escalated event reached none of
  its team's endpoints (every delivery dead, or cancelled by a 410), the dispatcher calls
  ``on_undeliverable(alert_id, team_id)`` (the duty service sends it to the fallback team).

See docs/webhooks.md for what receivers see.
"""
