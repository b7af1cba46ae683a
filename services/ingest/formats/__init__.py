"""Agencies' own event formats, translated onto joinedup's contracts, each in its own
package: ``hmpps`` (HMPPS domain events, by a mapping file checked at start), ``fhir`` (FHIR
R4 Task referrals)."""
