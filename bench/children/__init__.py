"""Programs `bench/perf.py` runs as processes of their own: the baselines and the probes.

Each is run as a script (`python bench/children/echo.py PORT`); they use the MQTT libraries
directly on purpose, as the baselines legwave is measured against.
"""
