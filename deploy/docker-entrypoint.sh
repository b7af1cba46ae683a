#!/bin/sh
# The image's entrypoint: refuse to start, in one line, when a setting the process cannot run
# without is missing, make sure the data directory is there and writable by this (non-root)
# user, then run the command (`joinedup worker`, `joinedup api`, ...) in its place.
#
# Deeper checks (a SASL protocol without credentials, a malformed sealing key) are the
# settings' own: `joinedup` refuses them with one line too (services/common/settings.py).
set -eu

missing=""
need() { eval "value=\${$1:-}"; [ -n "$value" ] || missing="$missing $1"; }
need DATABASE_URL
need KAFKA_BOOTSTRAP_SERVERS
# Production refuses the development keys; say so before Python starts.
if [ "${JOINEDUP_ENVIRONMENT:-development}" = production ]; then
  need JOINEDUP_MESSAGE_KEY_SECRET
  need JOINEDUP_SEALING_KEY
fi
if [ -n "$missing" ]; then
  echo "joinedup: missing setting(s):$missing (see deploy/compose/.env.example)" >&2
  exit 64
fi

data="${JOINEDUP_DATA_DIR:-.joinedup}"
if ! mkdir -p "$data" 2>/dev/null || [ ! -w "$data" ]; then
  echo "joinedup: data directory $data is not writable by uid $(id -u) (JOINEDUP_DATA_DIR)" >&2
  exit 73
fi
export JOINEDUP_DATA_DIR="$data"
exec "$@"
