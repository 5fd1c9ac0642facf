"""What the `fraudctl` verbs of every package share.

`app.py` is the console script's root and imports each package's `register()`; the packages
import only `cli_common.py` (never `app.py`), so nothing here imports back into them.
"""
