"""The ARI runtime: Switchboard as a Stasis application (built in a later release).

It will translate the engine's actions (`switchboard.engine.actions`) into ARI
requests and Asterisk's events into engine events (`switchboard.engine.events`).
"""
