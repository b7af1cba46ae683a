"""Admission: from each agency's own topic to the one person-keyed topic the processor folds.

Binding a publisher to its agency is the broker's job (each agency topic is writable only by
that agency's principal, see deploy/); admission refuses any event whose `source.agency` is
not the agency owning the topic it came on, or that breaks the contract, parking it on the
dead-letter topic with the reason. What it admits it re-keys by person, so one person's
events from every agency are in one partition, in one order. (The identity step will join it
here: resolve identifiers to a person id, then key by that.)
"""
