"""What every package's `fraudctl` verbs share: `cli_common.py` (config option, tables, JSON,
errors) and `topics.py` (creating Kafka topics).

`app.py` is the console script's root and imports each package's `register()`; the packages
import only the other modules here (never `app.py`), so nothing here imports back into them.
"""
