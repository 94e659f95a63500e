"""legwave's network side: the MQTT transport and agent, Home Assistant discovery, the CLI."""
