-- A rollback pins the champion it restores (DESIGN §9: "rollback is one command"). Before,
-- the next weekly training fitted the same data again and promoted what the operator had
-- just rolled back, silently. Training still runs and records its challengers while the
-- champion is pinned, but a challenger it would promote is "held" instead, until
-- `aoer model unpin` (or POST /api/model/unpin).
ALTER TABLE model_weights
    ADD COLUMN pinned_at timestamptz,
    ADD COLUMN pinned_by text,
    ADD CONSTRAINT model_weights_pinned_by_someone CHECK ((pinned_at IS NULL) = (pinned_by IS NULL)),
    ADD CONSTRAINT model_weights_only_the_champion_pinned
        CHECK (pinned_at IS NULL OR status = 'champion');

ALTER TABLE model_audit
    DROP CONSTRAINT model_audit_decision_check,
    ADD CONSTRAINT model_audit_decision_check
        CHECK (decision IN ('promoted', 'rejected', 'skipped', 'rolled_back', 'held'));
