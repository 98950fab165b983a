"""Every reading of a request path the guard must judge.

Tornado picks a handler by matching its regular expressions against the raw, still
percent-encoded path, and hands the handler its captures decoded once. A proxy in front
(or behind, for jupyter-server-proxy) may decode again or resolve dot segments. A rule
written against one of these readings loses to a request crafted for another, so the
guard derives all of them and closes a route if any reading reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

# Enough rounds to undo %25-stacked encodings of any practical depth.
_MAX_DECODE_ROUNDS = 4


def decode_fully(text: str) -> str:
    """Percent-decode until nothing changes (`%252e` -> `%2e` -> `.`)."""
    for _ in range(_MAX_DECODE_ROUNDS):
        decoded = unquote(text)
        if decoded == text:
            return decoded
        text = decoded
    return text


def normalize(path: str) -> str:
    """Collapse separators and resolve `.`/`..` the way a filesystem or browser would.

    Backslashes count as separators (some proxies and Windows-minded code treat them so);
    `..` above the root stays at the root. The result starts with `/` and has no
    trailing slash.
    """
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def relative_to_base(path: str, base_url: str) -> str:
    """The path below the server's base URL, without a leading slash.

    A path outside the base URL is returned whole (without its leading slash): it reaches
    no handler of the server, but judging it anyway costs nothing.
    """
    if path.startswith(base_url):
        return path[len(base_url) :].lstrip("/")
    if path + "/" == base_url:
        return ""
    return path.lstrip("/")


@dataclass(frozen=True)
class PathForms:
    """One request path, read four ways, each relative to the base URL."""

    routed: str
    """Raw, as tornado's route patterns see it."""
    captured: str
    """Decoded once, as a handler receives a `(.*)` capture."""
    decoded: str
    """Fully percent-decoded."""
    normalized: str
    """Fully decoded with separators collapsed and dot segments resolved."""

    def readings(self) -> tuple[str, ...]:
        """The distinct readings, in the order above."""
        seen: list[str] = []
        for form in (self.routed, self.captured, self.decoded, self.normalized):
            if form not in seen:
                seen.append(form)
        return tuple(seen)


def path_forms(raw_path: str, base_url: str) -> PathForms:
    """All readings of `raw_path` (the request path without its query)."""
    if not base_url.endswith("/"):
        base_url += "/"
    decoded = decode_fully(raw_path)
    return PathForms(
        routed=relative_to_base(raw_path, base_url),
        captured=relative_to_base(unquote(raw_path), base_url),
        decoded=relative_to_base(decoded, base_url),
        normalized=relative_to_base(normalize(decoded) + "/", base_url).rstrip("/"),
    )


def is_plain(raw_path: str) -> bool:
    """True when every reading of the path is the same: no escapes, dots or doubled slashes."""
    return not ("%" in raw_path or "//" in raw_path or "/." in raw_path or "\\" in raw_path)


def segments(relative: str) -> list[str]:
    """Non-empty path segments, so `a//b/` and `a/b` read the same."""
    return [part for part in relative.replace("\\", "/").split("/") if part]
