"""The n-body program (Computer Language Benchmarks Game), for a CPU-speed ratio with the Pi.

Run: python bench/nbody.py STEPS; prints the seconds it took. The same algorithm and constants
as the published runs; 5 million steps is the figure quoted for the Raspberry Pi 4.
"""

from __future__ import annotations

import sys
import time

PI = 3.14159265358979323
SOLAR_MASS = 4 * PI * PI
DAYS_PER_YEAR = 365.24

Body = tuple[list[float], list[float], float]


def bodies() -> list[Body]:
    """The Sun and the four gas giants: position (AU), velocity (AU/year), mass."""
    d = DAYS_PER_YEAR
    return [
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], SOLAR_MASS),
        (
            [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01],
            [
                1.66007664274403694e-03 * d,
                7.69901118419740425e-03 * d,
                -6.90460016972063023e-05 * d,
            ],
            9.54791938424326609e-04 * SOLAR_MASS,
        ),
        (
            [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01],
            [
                -2.76742510726862411e-03 * d,
                4.99852801234917238e-03 * d,
                2.30417297573763929e-05 * d,
            ],
            2.85885980666130812e-04 * SOLAR_MASS,
        ),
        (
            [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01],
            [
                2.96460137564761618e-03 * d,
                2.37847173959480950e-03 * d,
                -2.96589568540237556e-05 * d,
            ],
            4.36624404335156298e-05 * SOLAR_MASS,
        ),
        (
            [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01],
            [
                2.68067772490389322e-03 * d,
                1.62824170038242295e-03 * d,
                -9.51592254519715870e-05 * d,
            ],
            5.15138902046611451e-05 * SOLAR_MASS,
        ),
    ]


def advance(steps: int, dt: float = 0.01) -> None:
    """Move the system `steps` times."""
    system = bodies()
    pairs = [(system[i], system[j]) for i in range(5) for j in range(i + 1, 5)]
    for _ in range(steps):
        for (r1, v1, m1), (r2, v2, m2) in pairs:
            dx, dy, dz = r1[0] - r2[0], r1[1] - r2[1], r1[2] - r2[2]
            mag = dt * ((dx * dx + dy * dy + dz * dz) ** -1.5)
            b1, b2 = m1 * mag, m2 * mag
            v1[0] -= dx * b2
            v1[1] -= dy * b2
            v1[2] -= dz * b2
            v2[0] += dx * b1
            v2[1] += dy * b1
            v2[2] += dz * b1
        for r, v, _ in system:
            r[0] += dt * v[0]
            r[1] += dt * v[1]
            r[2] += dt * v[2]


if __name__ == "__main__":
    t0 = time.perf_counter()
    advance(int(sys.argv[1]))
    print(time.perf_counter() - t0)
