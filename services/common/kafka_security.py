"""How this process authenticates to Kafka: the TLS and SASL options of every client.

Built from the settings (``JOINEDUP_KAFKA_SECURITY_PROTOCOL`` and friends) once per client by
the factories in services/common/kafka.py, and as Faust's ``broker_credentials`` for the
processor's Faust app, so no client of the project can be built without them.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.helpers import create_ssl_context

from services.common.settings import Settings

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT


class TokenFile(AbstractTokenProvider):  # type: ignore[misc]
    """OAUTHBEARER: the bearer token in a file, read again at each login, so whatever keeps
    the file fresh (Kubernetes' projected service-account token, an OIDC sidecar) rotates
    it without a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        return self.path.read_text().strip()


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Server verification against the CA file (or the system's CAs), and the client
    certificate when one is configured (mutual TLS)."""
    password = settings.kafka_ssl_key_password
    context = create_ssl_context(
        cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
        password=password.get_secret_value() if password is not None else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def client_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that make an aiokafka client connect as the settings say."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(settings)
    if protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        if settings.kafka_sasl_mechanism == "OAUTHBEARER":
            assert settings.kafka_sasl_oauth_token_file is not None  # the settings check it
            options["sasl_oauth_token_provider"] = TokenFile(settings.kafka_sasl_oauth_token_file)
        else:
            options["sasl_plain_username"] = settings.kafka_sasl_username
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same, as Faust's ``broker_credentials`` (None: PLAINTEXT)."""
    from faust.auth import OAuthCredentials, SASLCredentials, SSLCredentials

    protocol = settings.kafka_security_protocol
    context = tls_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(context)
    if settings.kafka_sasl_mechanism == "OAUTHBEARER":
        assert settings.kafka_sasl_oauth_token_file is not None
        return OAuthCredentials(oauth_cb=TokenFile(settings.kafka_sasl_oauth_token_file),
                                ssl_context=context)
    # Faust picks SASL_SSL when given a context, SASL_PLAINTEXT when not.
    return SASLCredentials(username=settings.kafka_sasl_username,
                           password=settings.kafka_sasl_password.get_secret_value(),
                           ssl_context=context, mechanism=settings.kafka_sasl_mechanism)
