"""Monitoring has no admin page of its own: the request log's is billing's (it is written with
the ledger), and health samples are read through the health API and pages."""
