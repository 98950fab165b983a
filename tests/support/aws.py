"""AWS on loopback: moto in server mode, plus what moto leaves out of Athena.

`AwsStandIn` runs moto's `ThreadedMotoServer` on 127.0.0.1 (boto3 talks HTTP to it) with a
thin WSGI layer in front that fills in behaviour moto does not model, driven by state the
test sets (see testing.md, "moto gaps"):
- `GetQueryExecution` reports `DataScannedInBytes` and `StateChangeReason` the test chose
  (moto always says 0 bytes and never gives a reason);
- `GetQueryResults` honours `MaxResults`/`NextToken` paging as Athena does (moto returns
  every row at once);
- faults: S3 GETs under a prefix answer 403 AccessDenied; an Athena action answers
  ThrottlingException (or AccessDeniedException) for its next N calls.
Everything else is moto's own backend, which the test may also shape in-process.
"""

from __future__ import annotations

import io
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from moto.athena.models import athena_backends
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

ACCOUNT = "123456789012"
REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

Scanned = int | Callable[[int], int]


@dataclass
class AthenaShaping:
    """What the test wants Athena to say beyond moto's model; keyed by execution id."""

    scanned: dict[str, Scanned] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    default_scanned: Scanned = 0
    denied_s3_prefixes: set[str] = field(default_factory=set)
    faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    polls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    calls: list[str] = field(default_factory=list)
    s3_ranges: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, action: str, code: str, times: int = 1) -> None:
        """`action` (e.g. "GetQueryExecution") answers `code` for its next `times` calls."""
        with self.lock:
            self.faults[action].extend([code] * times)

    def clear(self) -> None:
        with self.lock:
            self.scanned.clear()
            self.reasons.clear()
            self.default_scanned = 0
            self.denied_s3_prefixes.clear()
            self.faults.clear()
            self.polls.clear()
            self.calls.clear()
            self.s3_ranges.clear()


def _json_error(code: str, message: str, status: str) -> tuple[str, list, bytes]:
    body = json.dumps({"__type": code, "message": message, "Message": message}).encode()
    return status, [("Content-Type", "application/x-amz-json-1.1")], body


class ShapingMiddleware:
    def __init__(self, app: Any, shaping: AthenaShaping) -> None:
        self.app = app
        self.shaping = shaping

    def _call_inner(self, environ: dict[str, Any], body: bytes) -> tuple[str, list, bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        return captured["status"], captured["headers"], data

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        shaping = self.shaping
        if environ["REQUEST_METHOD"] == "GET" and not target:
            path = environ.get("PATH_INFO", "")
            with shaping.lock:
                denied = any(path.startswith(p) for p in shaping.denied_s3_prefixes)
                if not environ.get("QUERY_STRING"):
                    shaping.s3_ranges.append(environ.get("HTTP_RANGE"))
            if denied:
                body = (
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                    b"<Message>Access Denied</Message></Error>"
                )
                start_response("403 Forbidden", [("Content-Type", "application/xml")])
                return [body]
            return self.app(environ, start_response)
        if not target.startswith("AmazonAthena."):
            return self.app(environ, start_response)

        action = target.split(".", 1)[1]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        with shaping.lock:
            shaping.calls.append(action)
            fault = shaping.faults[action].pop(0) if shaping.faults.get(action) else None
        if fault is not None:
            status = "403 Forbidden" if fault.startswith("AccessDenied") else "400 Bad Request"
            status, headers, data = _json_error(fault, f"shaped by the test: {fault}", status)
        elif action == "GetQueryResults" and (page := self._page(json.loads(body))) is not None:
            status, headers = "200 OK", [("Content-Type", "application/x-amz-json-1.1")]
            data = page
        else:
            status, headers, data = self._call_inner(environ, body)
            if status.startswith("200"):
                request = json.loads(body or b"{}")
                if action == "GetQueryExecution":
                    data = self._execution(request, data)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        start_response(status, headers)
        return [data]

    def _execution(self, request: dict[str, Any], data: bytes) -> bytes:
        reply = json.loads(data)
        execution = reply["QueryExecution"]
        exec_id = execution["QueryExecutionId"]
        shaping = self.shaping
        with shaping.lock:
            shaping.polls[exec_id] += 1
            polls = shaping.polls[exec_id]
            scanned = shaping.scanned.get(exec_id, shaping.default_scanned)
            reason = shaping.reasons.get(exec_id)
        scanned_bytes = scanned(polls) if callable(scanned) else scanned
        execution["Statistics"]["DataScannedInBytes"] = scanned_bytes
        if reason:
            execution["Status"]["StateChangeReason"] = reason
        return json.dumps(reply).encode()

    def _page(self, request: dict[str, Any]) -> bytes | None:
        """One page of a succeeded query's rows, as Athena pages them (None: let moto answer)."""
        backend = athena_backends[ACCOUNT][REGION]
        exec_id = request.get("QueryExecutionId", "")
        execution = backend.executions.get(exec_id)
        if execution is None or execution.status != "SUCCEEDED":
            return None
        results = backend.get_query_results(exec_id)
        size = int(request.get("MaxResults") or 1000)
        start = int(request.get("NextToken") or 0)
        reply: dict[str, Any] = {
            "ResultSet": {
                "Rows": results.rows[start : start + size],
                "ResultSetMetadata": {"ColumnInfo": results.column_info},
            },
            "UpdateCount": 0,
        }
        if start + size < len(results.rows):
            reply["NextToken"] = str(start + size)
        return json.dumps(reply).encode()


class AwsStandIn(ThreadedMotoServer):
    """moto on 127.0.0.1 (free port) with the shaping layer; `url` is the endpoint."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.shaping = AthenaShaping()

    def _server_entry(self) -> None:
        app = ShapingMiddleware(DomainDispatcherApplication(create_backend_app), self.shaping)
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def athena_backend(self) -> Any:
        return athena_backends[ACCOUNT][REGION]

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(region_name=REGION, **CREDENTIALS)

    def client(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.url)

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()
        requests.post(
            f"{self.url}/moto-api/state-manager/unset-transition",
            json={"model_name": "athena::execution"},
            timeout=10,
        ).raise_for_status()
        self.shaping.clear()

    def inject_results(self, results: list[dict[str, Any]]) -> None:
        """Queue result sets; each next StartQueryExecution takes one (moto's API)."""
        response = requests.post(
            f"{self.url}/moto-api/static/athena/query-results",
            json={"account_id": ACCOUNT, "region": REGION, "results": results},
            timeout=120,
        )
        assert response.status_code == 201, response.text

    def slow_transitions(self, times: int) -> None:
        """Each execution state holds for `times` GetQueryExecution calls."""
        requests.post(
            f"{self.url}/moto-api/state-manager/set-transition",
            json={
                "model_name": "athena::execution",
                "transition": {"progression": "manual", "times": times},
            },
            timeout=10,
        ).raise_for_status()

    def latest_execution(self) -> Any:
        executions = self.athena_backend.executions
        return executions[list(executions)[-1]]
