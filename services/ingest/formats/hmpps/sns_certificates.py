"""SNS's signing certificates, fetched from a ``SigningCertURL`` already checked to be SNS's
and kept by URL for a while (SNS signs every delivery with the same few certificates, so
one fetch serves thousands of deliveries). The cache belongs to the app (``HmppsEdge``),
never to the module: two apps in one process keep their own.
"""

from __future__ import annotations

from typing import Final

import httpx
from cachetools import TTLCache
from cryptography import x509

from services.ingest.formats.hmpps.sns_signature import load_certificate

#: AWS rotates its signing certificates rarely and under a new URL; an hour bounds how long
#: a certificate withdrawn at the same URL would still be trusted.
CACHE_SECONDS: Final = 3600.0
#: A handful of regions and rotations at most; more would mean someone is cycling URLs.
CACHE_SIZE: Final = 64
#: A PEM certificate is a couple of kilobytes: anything much larger is not one.
MAX_BYTES: Final = 64 * 1024
TIMEOUT_SECONDS: Final = 5.0


class CertificateUnavailable(Exception):
    """The certificate could not be had now (network, status, size, content): the delivery
    is answered 5xx so SNS sends it again. The reason names no URL or content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningCertificates:
    def __init__(self, cache_seconds: float = CACHE_SECONDS, cache_size: int = CACHE_SIZE,
                 max_bytes: int = MAX_BYTES, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self._cache: TTLCache[str, x509.Certificate] = TTLCache(cache_size, cache_seconds)
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds

    async def certificate(self, url: str, transport: httpx.AsyncBaseTransport | None = None
                          ) -> x509.Certificate:
        """The certificate at ``url`` (an SNS certificate URL), from the cache or fetched
        over ``transport`` (None: the network; tests: a local stand-in). Only a certificate
        that loaded is kept, so a failed fetch is tried again on the next delivery."""
        found = self._cache.get(url)
        if found is None:
            found = await self._fetched(url, transport)
            self._cache[url] = found
        return found

    async def _fetched(self, url: str, transport: httpx.AsyncBaseTransport | None
                       ) -> x509.Certificate:
        try:
            async with httpx.AsyncClient(transport=transport, timeout=self._timeout,
                                         follow_redirects=False) as client, \
                    client.stream("GET", url) as answer:
                if answer.status_code != 200:
                    raise CertificateUnavailable(f"SNS answered {answer.status_code}")
                pem = bytearray()
                async for chunk in answer.aiter_bytes():
                    pem += chunk
                    if len(pem) > self._max_bytes:  # stop reading: never buffer a flood
                        raise CertificateUnavailable("the certificate is over the size limit")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise CertificateUnavailable(f"not fetched ({type(exc).__name__})") from None
        try:
            return load_certificate(bytes(pem))
        except ValueError:
            raise CertificateUnavailable("not an X.509 PEM certificate with an RSA key"
                                         ) from None
