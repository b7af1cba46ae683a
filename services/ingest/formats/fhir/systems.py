"""The URIs that name identifiers and agencies in a FHIR Task (docs/formats-fhir.md).

NHS numbers use NHS England's system. HMPPS publishes no FHIR naming system for NOMS
numbers, CRNs or PNC ids, so joinedup names them under the Ministry of Justice's domain, and
its own local ids and agencies under its own; every one is listed here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Identifier.system -> joinedup's identifier scheme.
SCHEME_BY_SYSTEM: Final[Mapping[str, str]] = MappingProxyType({
    "https://fhir.nhs.uk/Id/nhs-number": "nhs_number",
    "https://fhir.justice.gov.uk/Id/noms-number": "noms_number",
    "https://fhir.justice.gov.uk/Id/crn": "crn",
    "https://fhir.justice.gov.uk/Id/pnc-id": "pnc_id",
    "https://joinedup.uk/Id/local-id": "local_id",
})
SYSTEM_BY_SCHEME: Final[Mapping[str, str]] = MappingProxyType(
    {scheme: system for system, scheme in SCHEME_BY_SYSTEM.items()})

#: Where the Task as posted travels in its referral event (sealed with the other extra
#: values); here, not in ``task``, so the processor reads it without the FHIR models.
TASK_KEY: Final = "fhir.task"
#: Requester and owner are ``Organization/<agency id>``: the agency ids joinedup registers.
ORGANIZATION: Final = "Organization/"
#: statusReason codings joinedup reads on a rejected Task (DECLINE_REASONS, SERVICE_KINDS).
DECLINE_REASON_SYSTEM: Final = "https://joinedup.uk/CodeSystem/decline-reason"
SERVICE_KIND_SYSTEM: Final = "https://joinedup.uk/CodeSystem/service-kind"
