-- A dealership's name is unique, ignoring case and surrounding blanks ("Summit Ford" =
-- " summit ford "), like an organisation's (0008): a second registration under a taken name
-- is refused (issue 12), and the fleet view never shows two indistinguishable rows.
--
-- Names registered twice before this rule: the oldest keeps its name, each later one gets
-- the first 8 hex digits of its id appended ("Summit Ford (3f2a9c1e)"), so the index can be
-- built and nothing is lost. Rename them with care afterwards.
UPDATE tenants AS t
SET name = t.name || ' (' || left(t.id::text, 8) || ')'
FROM (
    SELECT id, row_number() OVER (PARTITION BY lower(btrim(name)) ORDER BY created_at, id) AS n
    FROM tenants
) AS d
WHERE d.id = t.id AND d.n > 1;

CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(btrim(name)));
