#!/usr/bin/env bash
# Give one agency its own Kafka principal, allowed to write its own topic and nothing else.
#
#   deploy/kafka/agency-principal.sh <agency-id> <password> [bootstrap] [admin-config]
#
# Run where Apache Kafka's tools are (e.g. `docker compose exec kafka-1 bash`). It creates the
# SCRAM-SHA-512 user `<agency-id>`, the agency's topic `joinedup.agency-events.<agency-id>`
# (if missing), and ACLs: the agency may Write and Describe that topic, and IdempotentWrite on
# the cluster; no Read, no other topic. joinedup's own principals (see kafka-acls.sh) read it.
# The processor's admission refuses any event on that topic whose source.agency is another
# agency, so the broker's authentication, not a field in the payload, says who published.
set -euo pipefail
agency="${1:?agency id}"; password="${2:?password}"
bootstrap="${3:-kafka-1:9092}"; config="${4:-}"
prefix="${JOINEDUP_TOPIC_PREFIX:-joinedup}"
topic="${prefix}.agency-events.${agency}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
# On the compose stack the internal listener (kafka-1:9092) needs no credentials; elsewhere
# pass a client properties file for an admin principal.
admin=(--bootstrap-server "$bootstrap"); [[ -n "$config" ]] && admin+=(--command-config "$config")

if ! [[ "$agency" =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]]; then
  echo "agency id must be 1-63 lower-case letters, digits and inner hyphens" >&2; exit 2
fi
"$bin/kafka-configs.sh" "${admin[@]}" --alter \
  --add-config "SCRAM-SHA-512=[password=${password}]" --entity-type users --entity-name "$agency"
"$bin/kafka-topics.sh" "${admin[@]}" --create \
  --if-not-exists --topic "$topic" --partitions "${JOINEDUP_TOPIC_PARTITIONS:-24}" \
  --replication-factor 3 --config retention.ms=604800000 --config min.insync.replicas=2
"$bin/kafka-acls.sh" "${admin[@]}" --add \
  --allow-principal "User:${agency}" --operation Write --operation Describe --topic "$topic"
"$bin/kafka-acls.sh" "${admin[@]}" --add \
  --allow-principal "User:${agency}" --operation IdempotentWrite --cluster
echo "agency ${agency} may write ${topic} (and nothing else)"
