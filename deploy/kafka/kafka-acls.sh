#!/usr/bin/env bash
# ACLs for joinedup's own principals (run once per cluster, as the admin user):
#   joinedup-gateway    writes every agency topic (it authenticates agencies over HTTP itself
#                       and writes each event to the topic of the agency it authenticated);
#   joinedup-processor  reads every agency topic (admission), writes and reads person-events,
#                       alerts and dead-letter, and uses the processor's consumer groups.
#   joinedup-operations the read API's operations routes and `joinedup dead-letters|what-if|
#                       replay`: reads every topic (show, --source log) and re-drives a dead
#                       letter to the topic it was parked from (docs/dead-letters.md). Each
#                       re-drive is audited; give this principal only to operations staff's
#                       tools (and the read API, which records governance events).
#   joinedup-duty       the duty service: writes alerts (what duty teams do).
# Nobody else may write person-events: it is what every read model folds, and only admission
# (which checked each event against the topic it came on) writes it.
set -euo pipefail
bootstrap="${1:-kafka-1:9092}"; config="${2:-}"
prefix="${JOINEDUP_TOPIC_PREFIX:-joinedup}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
# On the compose stack the internal listener (kafka-1:9092) needs no credentials; elsewhere
# pass a client properties file for an admin principal.
admin=(--bootstrap-server "$bootstrap"); [[ -n "$config" ]] && admin+=(--command-config "$config")
acl() { "$bin/kafka-acls.sh" "${admin[@]}" --add "$@"; }

acl --allow-principal User:joinedup-gateway --operation Write --operation Describe \
    --topic "${prefix}.agency-events." --resource-pattern-type prefixed
acl --allow-principal User:joinedup-gateway --operation Read --operation Describe \
    --topic "${prefix}.agency-events." --resource-pattern-type prefixed  # reads writes back
acl --allow-principal User:joinedup-gateway --operation IdempotentWrite --cluster
# HMPPS domain events (docs/formats-hmpps.md): the SNS endpoint writes them as published, and
# the gateway's HMPPS intake reads them back (group <processor_group>-hmpps) to map them.
acl --allow-principal User:joinedup-gateway --operation Write --operation Read \
    --operation Describe --topic "${prefix}.hmpps-domain-events." --resource-pattern-type prefixed
acl --allow-principal User:joinedup-gateway --operation Read \
    --group "${prefix}" --resource-pattern-type prefixed

acl --allow-principal User:joinedup-processor --operation Read --operation Describe \
    --topic "${prefix}." --resource-pattern-type prefixed
for topic in person-events alerts dead-letter; do
  acl --allow-principal User:joinedup-processor --operation Write --topic "${prefix}.${topic}"
done
acl --allow-principal User:joinedup-processor --operation Read \
    --group "${prefix}" --resource-pattern-type prefixed
acl --allow-principal User:joinedup-processor --operation IdempotentWrite --cluster

acl --allow-principal User:joinedup-operations --operation Read --operation Describe \
    --topic "${prefix}." --resource-pattern-type prefixed
acl --allow-principal User:joinedup-operations --operation Write \
    --topic "${prefix}.agency-events." --resource-pattern-type prefixed
# ...and the read API (which runs as operations) records governance events.
for topic in person-events alerts governance; do
  acl --allow-principal User:joinedup-operations --operation Write --topic "${prefix}.${topic}"
done

# joinedup-duty (the duty service): publishes what duty teams do to alerts.
acl --allow-principal User:joinedup-duty --operation Describe \
    --topic "${prefix}." --resource-pattern-type prefixed
acl --allow-principal User:joinedup-duty --operation Write --topic "${prefix}.alerts"
acl --allow-principal User:joinedup-duty --operation IdempotentWrite --cluster

# Every service lists the topics before writing (it never writes to one the broker does not
# list): Describe on all of joinedup's topics for the gateway too.
acl --allow-principal User:joinedup-gateway --operation Describe \
    --topic "${prefix}." --resource-pattern-type prefixed
