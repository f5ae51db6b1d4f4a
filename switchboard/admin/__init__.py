"""The admin web server of `switchboard run` and `switchboard agi`: health, readiness, metrics.

`server` serves it, `status` is what a runtime hands it, `metrics` turns that
into Prometheus's format.  It imports no runtime (a contract in pyproject.toml):
each runtime builds its own `status.RuntimeStatus`.
"""
