# Image for deploy/ (compose and Kubernetes). Not needed for `make demo` or `make test`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services services
COPY projections projections
COPY schemas schemas
RUN pip install --no-cache-dir .
USER nobody
CMD ["joinedup", "worker"]
