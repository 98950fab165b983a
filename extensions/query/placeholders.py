"""`:name` placeholders in SQL, bound from a namespace as positional `?` parameters.

Both engines bind `?` parameters themselves (Athena ExecutionParameters, DuckDB prepared
statements); this only rewrites the marker and collects the values in order. String
literals, quoted identifiers, comments and `::` casts are left alone, and so is a colon
right after a name or bracket (`list[a:b]` slices).
"""

from __future__ import annotations

from collections.abc import Mapping

from .engine import InvalidQuery

_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT = _IDENT_START | set("0123456789")


def _skip_quoted(sql: str, start: int, quote: str) -> int:
    """Index just past the literal that opens at `start` (a doubled quote escapes)."""
    i = start + 1
    while i < len(sql):
        if sql[i] == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def scan(sql: str) -> tuple[str, list[str], int]:
    """(SQL with `:name` turned into `?`, the names in order, count of bare `?` markers)."""
    out: list[str] = []
    names: list[str] = []
    bare = 0
    i = 0
    while i < len(sql):
        c = sql[i]
        if c in ("'", '"'):
            end = _skip_quoted(sql, i, c)
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = len(sql) if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif c == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == ":" and i + 1 < len(sql) and sql[i + 1] in _IDENT_START:
            before = sql[i - 1] if i else " "
            end = i + 1
            while end < len(sql) and sql[end] in _IDENT:
                end += 1
            if before in _IDENT or before in "])":
                out.append(sql[i:end])
            else:
                names.append(sql[i + 1 : end])
                out.append("?")
            i = end
        else:
            if c == "?":
                bare += 1
            out.append(c)
            i += 1
    return "".join(out), names, bare


def bind(
    sql: str, namespace: Mapping[str, object], positional: list[str] | None = None
) -> tuple[str, list[tuple[str, object]]]:
    """Resolve `:name` markers (or `?` markers with the `positional` variable names)."""
    rewritten, names, bare = scan(sql)
    if names and (bare or positional):
        raise InvalidQuery("use either :name placeholders or ? with -p, not both")
    if positional:
        names = positional
        if bare != len(positional):
            raise InvalidQuery(
                f"the query has {bare} ? placeholder(s) but {len(positional)} -p parameter(s)"
            )
    values = []
    for name in names:
        if name not in namespace:
            raise InvalidQuery(f"parameter {name!r} is not defined in the notebook")
        values.append((name, namespace[name]))
    return rewritten, values
