"""Per-user query history, persisted as JSON lines in the user's home.

Appending a line per finished query is cheap and survives server restarts; when the file
grows to twice the configured length it is rewritten with the newest entries only.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def default_history_path() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "kumohub" / "query-history.jsonl"


class HistoryStore:
    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self._lock = threading.Lock()

    def _read_lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"), default=str)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(line + "\n")
            lines = self._read_lines()
            if len(lines) > 2 * self.limit:
                staging = self.path.with_suffix(".jsonl.tmp")
                staging.write_text("\n".join(lines[-self.limit :]) + "\n", encoding="utf-8")
                os.replace(staging, self.path)

    def items(self) -> list[dict[str, Any]]:
        """Newest first; a damaged line is skipped, not fatal."""
        with self._lock:
            lines = self._read_lines()
        out = []
        for line in reversed(lines):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
            if len(out) >= self.limit:
                break
        return out
