"""The local stack: Kafka (KRaft), a Flink standalone cluster and FerretDB, run as local processes.

`install.py` fetches and caches the pieces, `services.py` says how each starts and when it is
healthy, `manager.py` brings them up and down, `cli.py` is `fraudctl stack ...`.
"""
