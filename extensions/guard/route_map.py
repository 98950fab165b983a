"""What the running server actually serves, read from its tornado router.

Extensions add routes in any order, some from entry points nobody listed (a pip-installed
jupyter-server-proxy server, a labextension path in a new folder). Rather than keep a list
that goes stale, the guard reads the router once every extension has loaded, and again
whenever routes are added: which first path segments lead to a proxied server, and which
static-file routes search a folder the user can write to.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tornado.routing import PathMatches, Rule
from tornado.web import Application, StaticFileHandler

from .locations import Locations, is_within
from .paths import segments

# The only files a kernelspec folder serves: the launcher's logos.
KERNEL_LOGOS = frozenset({"logo-32x32.png", "logo-64x64.png", "logo-svg.svg"})


@dataclass(frozen=True)
class StaticRoute:
    """A static-file route that searches at least one folder the user can write to."""

    regex: re.Pattern[str]
    roots: tuple[str, ...]
    route_class: str
    theme_parents: tuple[str, ...] = ()
    """Labextension folders whose `**/themes` subfolders the themes handler also searches."""

    def search_roots(self) -> list[str]:
        """Folders in the order the handler searches them (themes: extensions first)."""
        found: list[str] = []
        for parent in self.theme_parents:
            found.extend(glob.glob(os.path.join(parent, "**", "themes"), recursive=True))
        return [*found, *self.roots]

    def served_file(self, raw_path: str) -> tuple[bool, str | None]:
        """(matches, file the handler would serve for this raw path, if any)."""
        match = self.regex.match(raw_path)
        if match is None:
            return False, None
        captured = unquote(match.group(1)) if match.groups() else ""
        for root in self.search_roots():
            candidate = os.path.abspath(os.path.join(root, captured))
            if is_within(candidate, os.path.abspath(root)) and os.path.isfile(candidate):
                return True, candidate
        return True, None


@dataclass
class RouteMap:
    """Named proxies and risky static routes of one tornado application."""

    base_url: str
    locations: Locations
    named_servers: frozenset[str] = frozenset()
    static_routes: tuple[StaticRoute, ...] = ()
    _fingerprint: tuple[int, int] = field(default=(-1, -1), repr=False)

    def refresh(self, app: Application, skip: Rule | None = None) -> None:
        """Re-read the router when rules were added since the last read."""
        fingerprint = (len(app.default_router.rules), len(app.wildcard_router.rules))
        if fingerprint == self._fingerprint:
            return
        proxy_base = _proxy_handler_base()
        named: set[str] = set()
        static: list[StaticRoute] = []
        for rule in _handler_rules(app.default_router.rules, skip):
            target, kwargs = rule.target, rule.target_kwargs or {}
            pattern = rule.matcher.regex.pattern  # type: ignore[attr-defined]
            if proxy_base is not None and issubclass(target, proxy_base):
                name = self._first_segment(pattern)
                if name and name.lower() != "proxy":
                    named.add(name.lower())
            elif issubclass(target, StaticFileHandler):
                route = self._static_route(rule.matcher.regex, kwargs)  # type: ignore[attr-defined]
                if route is not None:
                    static.append(route)
        self.named_servers = frozenset(named)
        self.static_routes = tuple(static)
        self._fingerprint = fingerprint

    def _first_segment(self, pattern: str) -> str | None:
        relative = pattern.removeprefix(self.base_url)
        parts = segments(relative)
        if not parts or relative == pattern:
            return None
        first = parts[0]
        return first if re.fullmatch(r"[\w.-]+", first) else None

    def _static_route(self, regex: re.Pattern[str], kwargs: dict[str, Any]) -> StaticRoute | None:
        roots = kwargs.get("path")
        if not roots:
            return None  # served from a folder chosen per request: handled by its own rule
        roots = (roots,) if isinstance(roots, str) else tuple(roots)
        theme_parents = tuple(kwargs.get("labextensions_path") or ())
        folders = [*roots, *theme_parents]
        if all(self.locations.is_trusted(folder) for folder in folders):
            return None
        relative = regex.pattern.removeprefix(self.base_url)
        if relative.startswith("lab/extensions"):
            route_class = "lab-extension-file"
        elif relative.startswith("lab/api/themes"):
            route_class = "lab-theme-file"
        else:
            route_class = "static-file"
        return StaticRoute(regex, roots, route_class, theme_parents)


def _proxy_handler_base() -> type | None:
    try:
        from jupyter_server_proxy.handlers import ProxyHandler
    except ImportError:
        return None
    return ProxyHandler


def _handler_rules(rules: list[Rule], skip: Rule | None) -> Iterator[Rule]:
    """Every (path pattern, handler class) rule below `rules`, nested routers included."""
    for rule in rules:
        if rule is skip:
            continue
        nested = getattr(rule.target, "rules", None)
        if nested is not None:
            yield from _handler_rules(nested, skip)
        elif isinstance(rule.matcher, PathMatches) and isinstance(rule.target, type):
            yield rule
