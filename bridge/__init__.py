"""legwave's network side: the MQTT agent, Home Assistant discovery, the store, the CLI."""
