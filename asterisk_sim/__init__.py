"""A test double of Asterisk that speaks real ARI (HTTP + websocket)."""
