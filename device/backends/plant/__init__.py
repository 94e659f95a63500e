"""A simulated board in another process: the Pi backends' code paths, without a Pi.

`legwave plant` runs the simulator behind emulated GPIO lines and ADS1115 chips on a Unix
socket; `legwave run --backend plant` drives it through the same parts, sensor drivers and
sampler threads as on a Pi. Like the kernel's GPIO character device, the plant releases a
client's lines when its connection closes, so killing the agent with SIGKILL leaves the sleeves
to the wiring: pump and heaters off, exhausts open.
"""
