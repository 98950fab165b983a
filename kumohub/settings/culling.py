"""Stopping idle servers, so forgotten GPU servers stop costing money."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from ._base import Strict


class CullingSettings(Strict):
    """The jupyterhub-idle-culler service; profiles may set a shorter idle timeout."""

    enabled: bool = True
    timeout: PositiveInt = Field(default=3600, description="Seconds idle before a stop.")
    every: PositiveInt = Field(default=300, description="Seconds between culler passes.")
    max_age: int = Field(default=0, ge=0, description="Seconds; 0 means no maximum age.")
    users: bool = Field(default=False, description="Also delete idle users (never in prod).")
