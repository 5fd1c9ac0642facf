"""What the product's packages share, one floor below them: `cli_common.py` (config option,
tables, JSON, errors), `topics.py` (Kafka topics and consumer-group progress), `mongo.py`
(MongoDB clients and which errors mean "retry"), `dead_letters.py` (reading the DLQ topic),
`times.py` (the contract's timestamp format) and `metrics.py` (Prometheus endpoints).

`app.py` is the console script's root and imports each package's `register()`; the packages
import only the other modules here (never `app.py`), and nothing here imports the packages.
"""
