"""Athena results into Arrow: the CSV result object read straight from S3.

Paging `GetQueryResults` costs one round trip per 1,000 rows and JSON decoding of every
cell; the CSV object Athena writes is the same data in one stream. We fetch it with ranged
GETs in parallel (large objects), parse it with pyarrow's multithreaded CSV reader and give
each column the type Athena reports in the result metadata (one `GetQueryResults` call with
`MaxResults=1`, made while the download runs). Athena writes NULL as an empty unquoted field
and an empty string as `""`; the reader keeps the two apart. Where the object cannot be read
(no permission on the bucket, managed query results) we fall back to paging.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pacsv
from botocore.exceptions import ClientError

# One GET covers objects up to FIRST_PART (a single stream is fastest there); larger
# objects fetch the rest in parallel ranged GETs, which is where S3 throughput scales.
FIRST_PART = 32 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
MAX_PARALLEL_PARTS = 8
PAGE_SIZE = 1000
# S3 errors after which the object is unreadable for us, but GetQueryResults may still work.
UNREADABLE_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "403", "NoSuchKey", "404", "NoSuchBucket"}
)

_INTEGERS = {"tinyint": pa.int8(), "smallint": pa.int16(), "integer": pa.int32()}
_INTEGERS |= {"int": pa.int32(), "bigint": pa.int64()}
_FLOATS = {"double": pa.float64(), "float": pa.float32(), "real": pa.float32()}
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


@dataclass(frozen=True)
class AthenaColumn:
    """One column of Athena's ResultSetMetadata."""

    name: str
    type: str
    precision: int = 0
    scale: int = 0

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type, self.precision, self.scale)

    @property
    def display_type(self) -> str:
        if self.type == "decimal":
            return f"decimal({self.precision},{self.scale})"
        return self.type


def arrow_type(athena_type: str, precision: int = 0, scale: int = 0) -> pa.DataType:
    """The Arrow type for an Athena column; anything structured stays text."""
    kind = athena_type.strip().lower()
    if kind in _INTEGERS:
        return _INTEGERS[kind]
    if kind in _FLOATS:
        return _FLOATS[kind]
    if kind == "boolean":
        return pa.bool_()
    if kind == "date":
        return pa.date32()
    if kind == "timestamp":
        return pa.timestamp("ms" if precision <= 3 else "us" if precision <= 6 else "ns")
    match = _DECIMAL.fullmatch(kind)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        kind = "decimal"
    if kind == "decimal":
        precision = precision or 38
        return (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
    # varchar, char, string, json, varbinary, time, intervals, timestamp with time zone,
    # array, map, row, unknown: Athena renders them as text in the CSV.
    return pa.string()


def unique_names(names: Sequence[str]) -> list[str]:
    """Athena allows repeated column names (`SELECT 1 AS a, 2 AS a`); DataFrames should not."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count + 1}")
    return out


def parse_columns(column_info: Sequence[dict[str, Any]]) -> list[AthenaColumn]:
    return [
        AthenaColumn(
            name=info.get("Name") or info.get("Label") or f"_col{i}",
            type=info.get("Type", "varchar"),
            precision=int(info.get("Precision") or 0),
            scale=int(info.get("Scale") or 0),
        )
        for i, info in enumerate(column_info)
    ]


def empty_table(columns: Sequence[AthenaColumn]) -> pa.Table:
    names = unique_names([c.name for c in columns])
    return pa.schema([(n, c.arrow_type) for n, c in zip(names, columns, strict=True)]).empty_table()


def parse_csv(data: bytes | pa.Buffer, columns: Sequence[AthenaColumn]) -> pa.Table:
    """Athena's CSV (header line, every value quoted, NULL unquoted-empty) into typed Arrow."""
    if len(data) == 0:
        return empty_table(columns)
    names = unique_names([c.name for c in columns])
    return pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=True),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: c.arrow_type for n, c in zip(names, columns, strict=True)},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["true"],
            false_values=["false"],
        ),
    )


def split_s3_url(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// location: {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ResultReader:
    """Reads one finished query's result set, from S3 when it can."""

    def __init__(self, athena: Any, s3: Any, pool: ThreadPoolExecutor) -> None:
        self._athena = athena
        self._s3 = s3
        self._pool = pool
        self.first_part_bytes = FIRST_PART
        self.part_bytes = PART_SIZE
        self.last_source = ""
        self.last_parts = 0

    def metadata(self, execution_id: str) -> list[AthenaColumn]:
        response = self._athena.get_query_results(QueryExecutionId=execution_id, MaxResults=1)
        return parse_columns(response["ResultSet"]["ResultSetMetadata"].get("ColumnInfo", []))

    def read(
        self, execution_id: str, output_location: str | None
    ) -> tuple[pa.Table, list[AthenaColumn]]:
        columns_future = self._pool.submit(self.metadata, execution_id)
        data = None
        if output_location and output_location.endswith(".csv"):
            try:
                data = self.fetch_object(output_location)
            except ClientError as exc:
                if error_code(exc) not in UNREADABLE_CODES:
                    columns_future.cancel()
                    raise
        columns = columns_future.result()
        if data is None:
            self.last_source = "GetQueryResults"
            return self.page(execution_id, columns), columns
        self.last_source = "S3"
        return parse_csv(data, columns), columns

    def fetch_object(self, url: str) -> bytes:
        """The whole object: the first part tells the size, the rest come in parallel."""
        bucket, key = split_s3_url(url)
        first_range = f"bytes=0-{self.first_part_bytes - 1}"
        first = self._s3.get_object(Bucket=bucket, Key=key, Range=first_range)
        head = first["Body"].read()
        total = _total_size(first.get("ContentRange"), len(head))
        self.last_parts = 1
        if total <= len(head):
            return head
        step = self.part_bytes
        ranges = [(start, min(start + step, total) - 1) for start in range(len(head), total, step)]
        self.last_parts += len(ranges)

        def part(span: tuple[int, int]) -> bytes:
            got = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={span[0]}-{span[1]}")
            return got["Body"].read()

        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PARTS, len(ranges))) as parts:
            return b"".join([head, *parts.map(part, ranges)])

    def page(self, execution_id: str, columns: Sequence[AthenaColumn]) -> pa.Table:
        """Fallback: page through GetQueryResults and convert the text cells."""
        names = unique_names([c.name for c in columns])
        values: list[list[str | None]] = [[] for _ in columns]
        header_checked = False
        kwargs: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": PAGE_SIZE}
        while True:
            response = self._athena.get_query_results(**kwargs)
            rows = response["ResultSet"].get("Rows", [])
            if not header_checked and rows:
                header_checked = True
                first = [cell.get("VarCharValue") for cell in rows[0].get("Data", [])]
                if first == [c.name for c in columns]:
                    rows = rows[1:]
            for row in rows:
                cells = row.get("Data", [])
                for i in range(len(columns)):
                    values[i].append(cells[i].get("VarCharValue") if i < len(cells) else None)
            token = response.get("NextToken")
            if not token:
                break
            kwargs["NextToken"] = token
        arrays = [
            _text_to_arrow(column_values, column.arrow_type)
            for column_values, column in zip(values, columns, strict=True)
        ]
        return pa.Table.from_arrays(arrays, names=names) if arrays else pa.table({})


def _text_to_arrow(values: list[str | None], kind: pa.DataType) -> pa.Array:
    text = pa.array(values, pa.string())
    if pa.types.is_string(kind):
        return text
    # Only NULL has no VarCharValue; a blank in a typed column is also a missing value.
    cleaned = pa.array([v if v != "" else None for v in values], pa.string())
    return cleaned.cast(kind)


def _total_size(content_range: str | None, fallback: int) -> int:
    """`bytes 0-8388607/31457280` -> 31457280."""
    if content_range and "/" in content_range:
        size = content_range.rsplit("/", 1)[1]
        if size.isdigit():
            return int(size)
    return fallback
