"""Tools the test suite and the benchmarks share; not part of the installed package.

- `proxy`: a TCP proxy between the agent and the broker that delays, blackholes or resets.
- `flooder`: a hostile MQTT client, run as a process of its own (`flooder_command`).
- `soak`: random commands, link trouble and hardware faults on a simulated device, with the
  physics' truth checked every tick.

The simulated device itself ships in the package (`device.harness`), as gpiozero ships its
`MockFactory`.
"""
