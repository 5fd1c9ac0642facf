"""Talking to a Flink cluster: its REST API, submitting, upgrading and watching jobs."""
