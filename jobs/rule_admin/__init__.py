"""Rule administration: the run-time parameter versions of the running job
(`fraudctl rules`)."""
