"""Which files the platform installed, and which the user could have written.

Static routes (lab extensions, themes, kernelspec logos, code-server resources) may serve
files the platform installed. A file the user can write (anything in their home, data or
config dir, the notebook root, the team folder) may hold company data
under an innocent name, so it is never served from those routes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


def is_within(path: str, root: str) -> bool:
    """`path` is `root` or below it (both already resolved, no trailing slash)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def within_any(path: str, roots: Iterable[str]) -> bool:
    return any(is_within(path, root) for root in roots)


def resolved(paths: Iterable[str | os.PathLike[str] | None]) -> tuple[str, ...]:
    """Real paths of the given folders, duplicates and blanks dropped, order kept."""
    out: list[str] = []
    for path in paths:
        if not path:
            continue
        real = os.path.realpath(path)
        if real not in out:
            out.append(real)
    return tuple(out)


@dataclass(frozen=True)
class Locations:
    """Trusted install prefixes, and the user-writable folders carved out of them."""

    trusted_prefixes: tuple[str, ...]
    user_dirs: tuple[str, ...]
    check_ownership: bool
    """When the server is not root, a trusted file must also be one it cannot write."""

    def is_trusted(self, path: str) -> bool:
        """The file's real location is an install prefix the user cannot write to."""
        real = os.path.realpath(path)
        if within_any(real, self.user_dirs):
            return False
        prefix = next((p for p in self.trusted_prefixes if is_within(real, p)), None)
        if prefix is None:
            return False
        return not self.check_ownership or not _writable_up_to(real, prefix)


def _writable_up_to(path: str, prefix: str) -> bool:
    """The server's own user could change `path` or a folder between it and `prefix`."""
    current = Path(path)
    while True:
        if os.access(current, os.W_OK):
            return True
        if str(current) == prefix or current.parent == current:
            return False
        current = current.parent


def code_server_root() -> str | None:
    """code-server's install folder (the one holding `lib/vscode`), if it is installed."""
    executable = shutil.which("code-server")
    if executable is None:
        return None
    for folder in Path(os.path.realpath(executable)).parents:
        if (folder / "lib" / "vscode").is_dir():
            return str(folder)
    return None


def platform_locations(
    *,
    home: str | None,
    root_dir: str | None,
    shared_roots: Iterable[str],
    data_dirs: Iterable[str] = (),
) -> Locations:
    """The trust model of one user server.

    Trusted: the Python environment and system prefixes, and code-server's install folder.
    Carved out: the user's home, notebook root, Jupyter data/config dirs and shared folders,
    wherever they sit. Temporary folders need no carve-out: they are no install prefix, and
    a prefix the server's user could write to fails the ownership check.
    """
    trusted = resolved([sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr", code_server_root()])
    user_dirs = resolved([home, root_dir, *data_dirs, *shared_roots])
    return Locations(trusted, user_dirs, check_ownership=os.geteuid() != 0)
