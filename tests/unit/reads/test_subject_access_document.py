"""The readable subject-access document escapes what agencies wrote (free text can hold
anything, markup included)."""

from __future__ import annotations

from services.reads.subject_access import render_html


def test_the_document_escapes_free_text() -> None:
    report = {
        "person_id": "p-1", "generated_at": "2026-12-06T09:00:00+00:00", "identifiers": [
            {"scheme": "nhs_number", "value": "9434765919"}],
        "records": [{"occurred_at": "2026-03-02", "event_type": "contact.attended",
                     "summary": "Contact attended",
                     "source": {"agency": "leeds-housing", "service_kind": "HOUSING",
                                "system": "Northgate"},
                     "details": {"contact_id": "<script>alert(1)</script>"},
                     "additional_information": {"note": "<img src=x onerror=alert(2)>"}}],
        "caseload": [], "referrals": [], "alerts": [],
        "governance": {"consents": [], "episodes": [], "grants": [], "disclosures": []},
        "shared_with": [], "access_log": []}
    html = render_html(report)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "nhs number" in html and "9434765919" in html
