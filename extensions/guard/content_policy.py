"""What `/api/contents` may hand to the editor: the bounded part of the guard.

The editor needs file contents, so this route cannot be closed; it is bounded instead.
Each rule is decided on the resolved file, not the name in the URL: a symlink called
`notes.py` that points at `data.parquet` is judged as the Parquet file it is, and a
Parquet file renamed to `notes.py` is recognised by its bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from kumohub.settings import GuardPolicy

from .locations import resolved, within_any

# How much of a file the guard reads to tell text from data.
SNIFF_BYTES = 4096

# Leading bytes of container formats data travels in. None of them is an editable text file.
DATA_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PAR1", "Parquet"),
    (b"ARROW1", "Arrow"),
    (b"ORC", "ORC"),
    (b"Obj\x01", "Avro"),
    (b"PK\x03\x04", "zip/xlsx"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"(\xb5/\xfd", "zstd"),
    (b"SQLite format 3\x00", "SQLite"),
    (b"\x89HDF\r\n\x1a\n", "HDF5"),
    (b"\x93NUMPY", "NumPy"),
    (b"\xd0\xcf\x11\xe0", "OLE/xls"),
    (b"\x80\x04\x95", "pickle"),
    (b"\x80\x05\x95", "pickle"),
)


def extension(name: str) -> str:
    """Lowercase extension with its dot (`.csv`), or '' for none."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def data_signature(head: bytes) -> str | None:
    """The data format `head` starts with, if any."""
    for signature, name in DATA_SIGNATURES:
        if head.startswith(signature):
            return name
    return None


@dataclass(frozen=True)
class ContentPolicy:
    """The guard policy applied to files under the notebook root and the shared folders."""

    policy: GuardPolicy
    roots: tuple[str, ...]
    """Resolved folders a path may lead into: the notebook root, then shared folders."""

    @classmethod
    def build(
        cls, policy: GuardPolicy, root_dir: str, shared_roots: Iterable[str]
    ) -> ContentPolicy:
        return cls(policy, resolved([root_dir, *shared_roots]))

    def readable(self, ext: str) -> bool:
        return ext in self.policy.content_extensions or ext in self.policy.base64_extensions

    def outside_roots(self, os_path: str) -> str | None:
        """Why `os_path` may not be used: it resolves out of the root (through a symlink)."""
        return self._escape(os.path.realpath(os_path))

    def _escape(self, real: str) -> str | None:
        if within_any(real, self.roots):
            return None
        return "resolves outside the notebook folder and the shared folders (symlink)"

    def read_refusal(self, requested: str, os_path: str, *, base64: bool) -> str | None:
        """Why the editor may not read `os_path` (requested as `requested`), or None.

        Directories (listings) and missing paths are not this rule's business: a listing
        carries names only, and a missing file returns a 404 from the handler.
        """
        real = os.path.realpath(os_path)
        escape = self._escape(real)
        if escape:
            return escape
        try:
            info = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            return self._type_refusal(requested, real, base64=base64)
        except (OSError, ValueError):
            return "the file cannot be inspected"
        if stat.S_ISDIR(info.st_mode):
            return None
        if not stat.S_ISREG(info.st_mode):
            return "not a regular file"
        refusal = self._type_refusal(requested, real, base64=base64)
        if refusal:
            return refusal
        if info.st_size > self.policy.content_max_bytes:
            return f"larger than the {self.policy.content_max_bytes}-byte editor limit"
        return self._bytes_refusal(real, base64=base64)

    def _type_refusal(self, requested: str, real: str, *, base64: bool) -> str | None:
        allowed = self.policy.base64_extensions if base64 else self.policy.content_extensions
        for ext in dict.fromkeys((extension(requested), extension(real))):
            if ext not in allowed:
                kind = f"'{ext}' files" if ext else "files without an extension"
                how = "as base64" if base64 else "in the editor"
                return f"{kind} are not readable {how}"
        return None

    def _bytes_refusal(self, real: str, *, base64: bool) -> str | None:
        try:
            with open(real, "rb") as handle:
                head = handle.read(SNIFF_BYTES)
        except OSError:
            return "the file cannot be inspected"
        name = data_signature(head)
        if name:
            return f"the file holds {name} data"
        if not base64 and b"\x00" in head:
            return "binary content under a text file name"
        return None

    def rename_refusal(self, old_os_path: str, new_os_path: str) -> str | None:
        """Why a file may not move from `old_os_path` to `new_os_path`, or None.

        Renaming a data file to a readable type would dodge the type rule, so a file
        whose type is not readable keeps it.
        """
        for path in (old_os_path, new_os_path):
            escape = self.outside_roots(path)
            if escape:
                return escape
        if os.path.isdir(old_os_path):
            return None
        old_ext, new_ext = extension(old_os_path), extension(new_os_path)
        if old_ext != new_ext and self.readable(new_ext) and not self.readable(old_ext):
            old_kind = f"a '{old_ext}' file" if old_ext else "a file without an extension"
            return f"renaming {old_kind} to '{new_ext}' would make it readable in the editor"
        return None
