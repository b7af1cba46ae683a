# Image for deploy/ (compose and Kubernetes). Not needed for `make demo` or `make test`.
# One image for every joinedup process; the command picks it (joinedup worker | api |
# read-api | duty serve). Runs as an unprivileged numeric user (10001), so Kubernetes'
# runAsNonRoot can check it, writing only to JOINEDUP_DATA_DIR (/var/lib/joinedup, a volume).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JOINEDUP_ENVIRONMENT=production \
    JOINEDUP_DATA_DIR=/var/lib/joinedup \
    JOINEDUP_WORKER_HEALTH_HOST=0.0.0.0 \
    JOINEDUP_API_HOST=0.0.0.0 \
    JOINEDUP_READS_HOST=0.0.0.0 \
    JOINEDUP_DUTY_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY services services
COPY projections projections
COPY schemas schemas
# A passwd entry and USER for the numeric user: `getpass.getuser()` (the CLI's default --by)
# fails for a uid with neither, e.g. when Kubernetes runs the image as another uid.
ENV USER=joinedup
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps . \
    && groupadd --gid 10001 joinedup \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/joinedup \
       --shell /usr/sbin/nologin joinedup \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/joinedup
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# /app stays root's and read-only to the process: a write outside the data directory fails.
USER 10001:10001
VOLUME ["/var/lib/joinedup"]
EXPOSE 8080 8081 8082 8083
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["joinedup", "worker"]
