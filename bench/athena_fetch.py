"""Benchmark: a 200,000-row x 10-column Athena result from moto into a pandas DataFrame.

Side by side in one run, each timed end to end (StartQueryExecution, status poll, result
metadata, result read, DataFrame):
  ours         kumohub's AthenaEngine (parallel ranged S3 GETs + typed pyarrow CSV)
  pyathena-arrow / pyathena-pandas   PyAthena 4.2 ArrowCursor(.as_arrow().to_pandas())
                                     and PandasCursor(.as_pandas())
  awswrangler  awswrangler 3.17 athena.read_sql_query(ctas_approach=False)
  raw          one S3 GET of the result object + pyarrow.csv.read_csv + to_pandas: the floor
Goals: ours no slower than the fastest anchor, >= 3x faster than awswrangler, within 1.3x
of raw. Prints medians and ratios; asserts nothing.

    python bench/athena_fetch.py [--repeats 5]

awswrangler 3.17 requires pyarrow<26 while the user image pins 26, so the script runs itself
in its own venv (~/.cache/kumohub/bench-venv, from requirements/bench.txt, made or synced
on first use with the uv that scripts/bootstrap.sh installs); all contenders then share
that one interpreter and library set.

AWS is moto in a separate process (tests/support/aws.py's stand-in: Athena paging honours
MaxResults as Athena does). Each query gets the same prepared result set and CSV object
(moto would otherwise rebuild a 24 MB CSV in Python inside every StartQueryExecution,
time that real Athena spends before the result exists, not in fetching it). The
executions finish at the first status check, so no client's poll interval is measured.
PyAthena's ArrowCursor reads S3 through pyarrow's S3FileSystem, which takes no endpoint
from the environment: a small result-set subclass passes the loopback endpoint.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("KUMOHUB_CACHE") or Path.home() / ".cache" / "kumohub")
VENV = CACHE / "bench-venv"
LOCK = REPO / "requirements" / "bench.txt"
UV = CACHE / "tools" / "bin" / "uv"
BUCKET = "bench-athena-results"
ROWS = 200_000
COLUMNS = [
    ("order_id", "bigint", 19, 0),
    ("customer", "varchar", 64, 0),
    ("country", "varchar", 2, 0),
    ("amount", "decimal", 12, 2),
    ("quantity", "integer", 10, 0),
    ("unit_price", "double", 17, 0),
    ("ordered_at", "timestamp", 3, 0),
    ("order_date", "date", 0, 0),
    ("express", "boolean", 0, 0),
    ("note", "varchar", 200, 0),
]
SQL = "SELECT * FROM sales.orders_wide"


# -- the bench venv -----------------------------------------------------------------------


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv() -> Path:
    """Create or sync the bench venv from the lock; fast when it is current."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".kumohub-bench-lock"
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_CACHE_DIR=str(CACHE / "uv"))
    if not UV.exists():
        sys.exit(f"{UV} is missing: run scripts/bootstrap.sh first")
    if not python.exists():
        subprocess.run(
            [str(UV), "venv", "-q", "--python", "python3", str(VENV)], env=env, check=True
        )
    if not stamp.exists() or stamp.read_text() != LOCK.read_text():
        print(f"[bench] installing {LOCK.name} into {VENV}", flush=True)
        uv_pip = [str(UV), "pip"]
        subprocess.run(
            [*uv_pip, "sync", "-q", "--python", str(python), str(LOCK)], env=env, check=True
        )
        subprocess.run(
            [*uv_pip, "install", "-q", "--python", str(python), "--no-deps", "-e", str(REPO)],
            env=env,
            check=True,
        )
        stamp.write_text(LOCK.read_text())
    return python


# -- the AWS stand-in process ------------------------------------------------------------------


def result_rows() -> list[list[str | None]]:
    start = dt.datetime(2025, 1, 1)
    countries = ["JP", "US", "DE", "GB", "FR", "BR", "IN", "AU"]
    rows = []
    for i in range(ROWS):
        at = start + dt.timedelta(seconds=i * 97)
        rows.append(
            [
                str(1_000_000 + i),
                f"customer-{(i * 7919) % 50_000:05d}",
                countries[i % len(countries)],
                f"{(i * 3571) % 1_000_000 / 100:.2f}",
                str(1 + i % 9),
                f"{(i % 1000) * 1.37 + 0.99:.4f}",
                at.strftime("%Y-%m-%d %H:%M:%S.") + f"{i % 1000:03d}",
                at.strftime("%Y-%m-%d"),
                "true" if i % 4 == 0 else "false",
                None if i % 5 == 0 else ("" if i % 17 == 0 else f"gift wrap, note {i % 113}"),
            ]
        )
    return rows


def athena_csv(rows: list[list[str | None]]) -> bytes:
    """The CSV Athena writes: header, every value quoted, NULL an empty unquoted field."""

    def cell(value: str | None) -> str:
        return "" if value is None else '"' + value.replace('"', '""') + '"'

    lines = [",".join(cell(name) for name, *_ in COLUMNS)]
    lines += [",".join(cell(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def serve_aws() -> None:
    """Child process: moto with one prepared result set that every query returns."""
    sys.path.insert(0, str(REPO))
    from moto.athena.models import QueryResults
    from moto.s3.models import s3_backends

    from tests.support.aws import ACCOUNT, AwsStandIn

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    aws = AwsStandIn()
    aws.start()
    aws.client("s3").create_bucket(Bucket=BUCKET)
    rows = result_rows()
    header = {"Data": [{"VarCharValue": name} for name, *_ in COLUMNS]}
    data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    info = [
        {"Name": n, "Label": n, "Type": t, "Precision": p, "Scale": s, "Nullable": "UNKNOWN"}
        for n, t, p, s in COLUMNS
    ]
    prepared = QueryResults(rows=[header, *data], column_info=info)
    body = athena_csv(rows)
    backend = aws.athena_backend
    s3 = s3_backends[ACCOUNT]["aws"]

    class Endless(list):
        def pop(self, index: int = -1) -> Any:
            return prepared

        def __bool__(self) -> bool:
            return True

    shared_key = "staging/prepared-result.csv"
    s3.put_object(bucket_name=BUCKET, key_name=shared_key, value=body)

    def store_csv(exec_id: str) -> None:
        # Every execution's result is the one prepared object (same bytes Athena would write).
        backend.executions[exec_id].config["OutputLocation"] = f"s3://{BUCKET}/{shared_key}"

    backend.query_results_queue = Endless()
    backend._store_query_result_in_s3 = store_csv
    print(json.dumps({"url": aws.url, "csv_bytes": len(body)}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    aws.stop()


# -- the contenders ------------------------------------------------------------------------


def contenders(url: str, workgroup: str) -> dict[str, Any]:
    import awswrangler as wr
    import boto3
    import pyarrow.csv as pacsv
    from kumohub.extensions.query.athena_engine import AthenaEngine
    from kumohub.extensions.query.dataframe import to_dataframe
    from kumohub.extensions.query.engine import QueryRequest
    from pyathena import connect
    from pyathena.arrow import cursor as arrow_cursor_module
    from pyathena.arrow.cursor import ArrowCursor
    from pyathena.arrow.result_set import (
        AthenaArrowResultSet,
        AthenaArrowResultSetMetadataReader,
    )
    from pyathena.pandas.cursor import PandasCursor

    from kumohub.settings import AthenaSettings

    staging = f"s3://{BUCKET}/staging/"
    session = boto3.session.Session(region_name="us-east-1")
    engine = AthenaEngine(
        AthenaSettings(endpoint_url=url, output_location=staging, default_workgroup=workgroup),
        session=session,
    )
    s3 = session.client("s3", endpoint_url=url)

    class LoopbackArrowReader(AthenaArrowResultSetMetadataReader):
        def _create_s3_file_system(self) -> Any:
            from pyarrow import fs

            creds = self._connection.session.get_credentials().get_frozen_credentials()
            host = url.split("://", 1)[1]
            return fs.S3FileSystem(
                region="us-east-1",
                access_key=creds.access_key,
                secret_key=creds.secret_key,
                endpoint_override=host,
                scheme="http",
            )

    class LoopbackArrowResultSet(AthenaArrowResultSet):
        _metadata_reader_class = LoopbackArrowReader

    arrow_cursor_module.AthenaArrowResultSet = LoopbackArrowResultSet  # type: ignore[misc]
    connection = connect(
        s3_staging_dir=staging, region_name="us-east-1", work_group=workgroup, endpoint_url=url
    )
    arrow_cursor = connection.cursor(ArrowCursor)
    pandas_cursor = connection.cursor(PandasCursor)
    wr.config.athena_endpoint_url = url
    wr.config.s3_endpoint_url = url

    def ours() -> Any:
        return to_dataframe(engine.submit(QueryRequest(SQL)).wait().table)

    def pyathena_arrow() -> Any:
        return arrow_cursor.execute(SQL).as_arrow().to_pandas()

    def pyathena_pandas() -> Any:
        return pandas_cursor.execute(SQL).as_pandas()

    def awswrangler() -> Any:
        return wr.athena.read_sql_query(
            SQL,
            database="default",
            ctas_approach=False,
            workgroup=workgroup,
            s3_output=staging,
            boto3_session=session,
        )

    def raw() -> Any:
        executions = engine.athena.list_query_executions(WorkGroup=workgroup)
        last = engine.athena.get_query_execution(
            QueryExecutionId=executions["QueryExecutionIds"][-1]
        )
        location = last["QueryExecution"]["ResultConfiguration"]["OutputLocation"]
        bucket, key = location.removeprefix("s3://").split("/", 1)
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return pacsv.read_csv(__import__("pyarrow").py_buffer(data)).to_pandas()

    return {
        "ours": ours,
        "pyathena-arrow": pyathena_arrow,
        "pyathena-pandas": pyathena_pandas,
        "awswrangler": awswrangler,
        "raw": raw,
    }


def run_bench(repeats: int) -> None:
    aws_env = dict(os.environ, PYTHONPATH=str(REPO))
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-aws"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=aws_env,
        text=True,
    )
    try:
        ready = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        url = ready["url"]
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL=url,
        )
        sys.path.insert(0, str(REPO))
        import boto3

        boto3.client("athena", endpoint_url=url).create_work_group(Name="bench")
        runs = contenders(url, "bench")
        shapes = {}
        for name, run in runs.items():  # warm-up, and every contender sees the same table
            frame = run()
            shapes[name] = frame.shape
        assert all(shape == (ROWS, len(COLUMNS)) for shape in shapes.values()), shapes
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"\n{ROWS:,} rows x {len(COLUMNS)} columns, CSV {ready['csv_bytes'] / 1e6:.1f} MB,")
    print(f"median of {repeats} runs each (after one warm-up), seconds:")
    for name, seconds in sorted(median.items(), key=lambda item: item[1]):
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:<16} {seconds:7.3f}   (range {spread})")
    anchors = {
        k: v for k, v in median.items() if k in ("pyathena-arrow", "pyathena-pandas", "awswrangler")
    }
    fastest = min(anchors, key=anchors.get)  # type: ignore[arg-type]
    ours = median["ours"]
    print("\nratios (goal in brackets):")
    print(f"  ours / fastest anchor ({fastest}) = {ours / anchors[fastest]:.2f}  [<= 1.00]")
    print(f"  awswrangler / ours                  = {median['awswrangler'] / ours:.2f}  [>= 3.00]")
    print(f"  ours / raw                          = {ours / median['raw']:.2f}  [<= 1.30]")


def main() -> None:
    parser = argparse.ArgumentParser(description="Athena result fetch benchmark")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--serve-aws", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_aws:
        serve_aws()
        return
    if not in_bench_venv():
        python = ensure_venv()
        os.execv(str(python), [str(python), __file__, *sys.argv[1:]])
    run_bench(args.repeats)


if __name__ == "__main__":
    main()
