"""legwave's appliance: hardware abstraction, simulator, pure control logic and the runner.

Knows nothing about MQTT; `bridge` puts it on the network.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("legwave")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
