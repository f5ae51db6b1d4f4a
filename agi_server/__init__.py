"""The FastAGI runtime: the same scenarios over AGI commands (built in a later release).

It will drive `switchboard.engine.call.CallRun` exactly as the ARI runtime and
`switchboard simulate` do, one AGI session per call.
"""
