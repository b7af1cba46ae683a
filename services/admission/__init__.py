"""Admission: from each agency's own topic to the one person-keyed topic the processor folds.

Binding a publisher to its agency is the broker's job (each agency topic is writable only by
that agency's principal, see deploy/); admission refuses any event whose `source.agency` is
not the agency owning the topic it came on, or that breaks the contract, parking it on the
dead-letter topic with the reason. What it admits goes through the identity step
(services/identity): its identifiers resolve to an opaque person id, and it is re-keyed by
that id, so one person's events from every agency, under whichever identifiers, are in one
partition, in one order."""
