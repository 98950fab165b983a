"""Command-line settings that put the download guard into every user server.

They go on the server's command line because nothing the user controls outranks it:
user config dirs are not read at all (`disable_user_config`), and a config file in a
writable place could only set what the command line already fixes. The contents manager
class is the guard's anchor: the server cannot start without the guard's package, and
that class enables the guard extension itself (extensions/guard/contents.py).
"""

from __future__ import annotations

from kumohub.settings import GuardPolicy

GUARDED_CONTENTS_MANAGER = "kumohub.extensions.guard.contents.GuardedContentsManager"


def download_guard_args(policy: GuardPolicy) -> list[str]:
    return [
        f"--ServerApp.contents_manager_class={GUARDED_CONTENTS_MANAGER}",
        "--ServerApp.allow_unauthenticated_access=False",
        f"--ServerApp.terminals_enabled={policy.terminals}",
        "--LabApp.extension_manager=readonly",
    ]
