"""Where the card-token key comes from: environment variables every part that tokenises or
starts a process that does (the config, the stack, the Python UDF workers) must agree on."""

# the key itself (a secret: never in config, SQL or logs)
SECRET_ENV = "FRAUD_CARD_TOKEN_SECRET"
# a file holding the key, readable only by its owner: what the TaskManagers get (Apache Beam
# logs a Python worker's whole environment when its job stops)
SECRET_FILE_ENV = "FRAUD_CARD_TOKEN_SECRET_FILE"
