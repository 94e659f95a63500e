"""Pure control logic: patterns, pressure regulation, heat, the session and the safety supervisor.

Nothing here does I/O or reads a clock: readings and time go in, actuator orders and events come
out, so a 60-minute session runs in virtual time and every safety rule is a table-driven test.
"""
