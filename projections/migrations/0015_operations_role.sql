-- Operations staff: they own the streams (dead letters, what-if, explain, point-in-time views
-- for investigations) and sign in to the read API like any practitioner. What they do is
-- recorded in access_audit (reader_kind practitioner, role operations; or an operator's --by).
ALTER TABLE practitioner DROP CONSTRAINT practitioner_role_check;
ALTER TABLE practitioner ADD CONSTRAINT practitioner_role_check
    CHECK (role IN ('practitioner', 'business_support', 'information_governance', 'operations'));
