"""Compiling the job: the SQL templates rendered with the config into one script."""
