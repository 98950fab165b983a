"""The query service: Athena in production, DuckDB over sample data in local mode."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from ._base import Strict


class AthenaSettings(Strict):
    """Amazon Athena through boto3; results are read from the S3 output location."""

    region: str = "us-east-1"
    endpoint_url: str | None = Field(
        default=None, description="Only for tests against a local AWS endpoint."
    )
    output_location: str = Field(pattern=r"^s3://[a-z0-9.\-]{3,63}(/.*)?$")
    default_workgroup: str = "primary"
    workgroups_by_group: dict[str, str] = Field(
        default_factory=dict, description="Group name -> Athena workgroup its members use."
    )
    catalog: str = "AwsDataCatalog"


SAMPLE_DATA_VERSION = "sales-v1"
"""Version of the generated sample dataset; a new one regenerates the cached copy."""


def default_sample_data_dir() -> Path:
    """Where the bootstrap step caches the sample dataset (shared by every local server)."""
    cache = os.environ.get("KUMOHUB_CACHE") or str(Path.home() / ".cache" / "kumohub")
    return Path(cache) / "sample-data" / SAMPLE_DATA_VERSION


class DuckDBSettings(Strict):
    """DuckDB over generated sample Parquet files (local mode)."""

    enabled: bool = Field(
        default=True, description="Offer DuckDB over the sample data beside Athena."
    )
    data_dir: Path | None = Field(
        default=None,
        description="Default: the sample dataset in the KumoHub cache (generated at setup).",
    )


class QuerySettings(Strict):
    """Engines and guardrails for the query panel and the %%athena magics."""

    engine: Literal["duckdb", "athena"] = "duckdb"
    athena: AthenaSettings | None = None
    duckdb: DuckDBSettings = DuckDBSettings()
    bytes_scanned_limit: PositiveInt | None = Field(
        default=None, description="Refuse or cancel queries that scan more than this."
    )
    catalog_cache_seconds: PositiveInt = Field(
        default=60, description="How long catalog listings (databases, tables) are reused."
    )
    panel_row_cap: PositiveInt = Field(default=1000, description="Rows the panel shows at most.")
    history_limit: PositiveInt = 200

    @model_validator(mode="after")
    def _athena_configured(self) -> QuerySettings:
        if self.engine == "athena" and self.athena is None:
            raise ValueError("engine is 'athena' but the 'athena' section is missing")
        if self.engine == "duckdb" and not self.duckdb.enabled:
            raise ValueError("engine is 'duckdb' but duckdb.enabled is false")
        return self

    def engines(self) -> tuple[str, ...]:
        """The engines offered, the default first."""
        offered = {"athena": self.athena is not None, "duckdb": self.duckdb.enabled}
        others = sorted(name for name, on in offered.items() if on and name != self.engine)
        return (self.engine, *others)
