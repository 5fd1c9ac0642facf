"""`fraudctl model ...`: the learned risk model trained, stored by version, promoted, rolled back
(docs/scoring.md)."""
