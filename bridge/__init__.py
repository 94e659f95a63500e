"""legwave's network side: the `legwave` command line (and, later, MQTT and Home Assistant)."""
