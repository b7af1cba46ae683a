#!/usr/bin/env bash
# The compose stack's Kafka set-up, run by the kafka-init service once the three brokers are
# healthy, over the brokers' replication listener (ANONYMOUS is a super user there, and only
# the brokers and this job are on that network). Safe to run again: users are re-set,
# topics and ACLs are created only when missing.
#
#   joinedup's principals  joinedup-gateway, joinedup-processor, joinedup-operations (and
#                          `admin`, a super user for operators on the CLIENT listener);
#   topics                 the fixed ones, replication 3, min.insync.replicas 2, kept forever
#                          (joinedup's principals may not create topics);
#   ACLs                   deploy/kafka/kafka-acls.sh;
#   agencies               KAFKA_AGENCY_PRINCIPALS="agency-a=password agency-b=password":
#                          deploy/kafka/agency-principal.sh for each.
set -euo pipefail
bootstrap="${KAFKA_INIT_BOOTSTRAP:?}"
prefix="${JOINEDUP_TOPIC_PREFIX:-joinedup}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
admin=(--bootstrap-server "$bootstrap")

scram_user() {  # <name> <password>: its SCRAM-SHA-512 credentials
  "$bin/kafka-configs.sh" "${admin[@]}" --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$2]" >/dev/null
  echo "kafka-init: SCRAM-SHA-512 user $1"
}
scram_user admin "${KAFKA_ADMIN_PASSWORD:?}"
scram_user joinedup-gateway "${KAFKA_GATEWAY_PASSWORD:?}"
scram_user joinedup-processor "${KAFKA_PROCESSOR_PASSWORD:?}"
scram_user joinedup-operations "${KAFKA_OPERATIONS_PASSWORD:?}"

for topic in person-events alerts governance dead-letter; do
  "$bin/kafka-topics.sh" "${admin[@]}" --create --if-not-exists --topic "${prefix}.${topic}" \
    --partitions "${JOINEDUP_TOPIC_PARTITIONS:-24}" --replication-factor 3 \
    --config min.insync.replicas=2 --config retention.ms=-1
done

# The ACLs every deployment gets (the same script as on any other cluster).
JOINEDUP_TOPIC_PREFIX="$prefix" KAFKA_BIN="$bin" bash /opt/joinedup/kafka/kafka-acls.sh "$bootstrap"
# The read API records consent, agreements, grants and disclosures on the governance topic
# as joinedup-operations here; kafka-acls.sh does not grant that write (yet).
"$bin/kafka-acls.sh" "${admin[@]}" --add --allow-principal User:joinedup-operations \
  --operation Write --operation Describe --topic "${prefix}.governance"

for entry in ${KAFKA_AGENCY_PRINCIPALS:-}; do
  agency="${entry%%=*}"; password="${entry#*=}"
  if [[ -z "$agency" || "$agency" == "$entry" || -z "$password" ]]; then
    echo "kafka-init: KAFKA_AGENCY_PRINCIPALS entries are agency=password" >&2; exit 2
  fi
  JOINEDUP_TOPIC_PREFIX="$prefix" KAFKA_BIN="$bin" \
    bash /opt/joinedup/kafka/agency-principal.sh "$agency" "$password" "$bootstrap"
done
echo "kafka-init: done"
