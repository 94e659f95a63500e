"""Physical constants of the simulated appliance.

A module of its own so that the physics module holds plain Python only (it can be compiled).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SimConfig(BaseModel):
    """Physical constants of the simulated appliance; defaults: docs/device.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    max_step_s: float = Field(0.02, gt=0, le=0.05)
    dead_volume_l: float = 0.015
    slack_volume_l: tuple[float, float] = (0.18, 0.34)  # distal … proximal zone
    slack_pressure_mmhg: float = 15.0
    tissue_compliance_l_per_mmhg: float = 0.002
    pump_free_flow_l_min: float = 2.5
    pump_max_mmhg: float = 450.0
    pump_stall_duty: float = 0.4
    inlet_conductance_l_s_mmhg: float = 0.01
    exhaust_k: float = 0.035
    leak_r: float = 60000.0  # healthy garment: ≈0.5 mmHg/s at 80 mmHg
    slow_leak_r: float = 4000.0  # ≈5 mmHg/s at 60 mmHg
    hose_off_k: float = 0.05
    sensor_lag_s: float = Field(0.04, ge=0, le=1)  # tubing and the ADC's own filter
    sensor_noise_mmhg: float = 0.3
    sensor_step_mmhg: float = 0.1
    sensor_offset_mmhg: float = 40.0
    heater_w: float = 25.0
    heater_capacity_j_k: float = 350.0
    heater_r_skin: float = 1.5
    heater_r_amb: float = 3.0
    skin_c: float = 33.0
    ambient_c: float = 22.0
    temp_noise_c: float = 0.05
    temp_step_c: float = 0.0625
