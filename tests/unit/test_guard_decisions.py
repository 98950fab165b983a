"""The guard's verdicts on request paths, against a real folder tree (no server needed).

A `system` folder stands in for the install prefix and a `home` folder for the user's home
and notebook root, so the trust rules act on real files, symlinks included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kumohub.extensions.guard.content_policy import ContentPolicy
from kumohub.extensions.guard.decisions import RequestGuard, Verdict
from kumohub.extensions.guard.locations import Locations
from kumohub.extensions.guard.route_map import RouteMap, StaticRoute

from kumohub.settings import GuardPolicy

BASE = "/user/alice/"
SENTINEL = b"KUMO-SENTINEL-UNIT"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    system, home, team = tmp_path / "system", tmp_path / "home", tmp_path / "team"
    for folder in (
        system / "labextensions" / "good" / "static",
        system / "kernels" / "python3",
        home / ".local" / "share" / "jupyter" / "labextensions" / "evil" / "static",
        home / ".local" / "share" / "jupyter" / "kernels" / "evil",
        home / "sub",
        team,
    ):
        folder.mkdir(parents=True)
    (system / "labextensions" / "good" / "static" / "remoteEntry.js").write_text("ok")
    (system / "kernels" / "python3" / "logo-64x64.png").write_bytes(b"\x89PNG")
    (system / "kernels" / "python3" / "kernel.json").write_text("{}")
    user_ext = home / ".local" / "share" / "jupyter"
    (user_ext / "labextensions" / "evil" / "static" / "data.js").write_bytes(SENTINEL)
    (user_ext / "kernels" / "evil" / "logo-64x64.png").write_bytes(SENTINEL)
    (home / "data.csv").write_bytes(b"id,value\n1," + SENTINEL + b"\n")
    (home / "notes.txt").write_text("plain notes\n")
    (home / "analysis.ipynb").write_text('{"cells": []}')
    (home / "disguised.py").write_bytes(b"PAR1" + SENTINEL)
    (home / "nul.txt").write_bytes(b"abc\x00" + SENTINEL)
    (home / "big.txt").write_bytes(b"x" * 2048)
    (home / "link.py").symlink_to(home / "data.csv")
    (home / "outside.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "outside.txt").write_bytes(SENTINEL)
    (home / "team").symlink_to(team, target_is_directory=True)
    (team / "shared.md").write_text("# team\n")
    return {"system": system, "home": home, "team": team, "tmp": tmp_path}


def make_guard(tree: dict[str, Path], **policy: object) -> RequestGuard:
    system, home, team = tree["system"], tree["home"], tree["team"]
    guard_policy = GuardPolicy(content_max_bytes=1024, **policy)  # type: ignore[arg-type]
    locations = Locations(
        trusted_prefixes=(str(system),),
        user_dirs=(str(home), str(team)),
        check_ownership=False,
    )
    lab_extensions = StaticRoute(
        regex=re.compile(r"/user/alice/lab/extensions/(.*)$"),
        roots=(
            str(system / "labextensions"),
            str(home / ".local" / "share" / "jupyter" / "labextensions"),
        ),
        route_class="lab-extension-file",
    )
    routes = RouteMap(BASE, locations, frozenset({"vscode", "rstudio"}), (lab_extensions,))
    kernels = {
        "python3": str(system / "kernels" / "python3"),
        "evil": str(home / ".local" / "share" / "jupyter" / "kernels" / "evil"),
    }
    return RequestGuard(
        base_url=BASE,
        policy=guard_policy,
        locations=locations,
        routes=routes,
        contents=ContentPolicy.build(guard_policy, str(home), [str(team)]),
        contents_root=str(home),
        kernelspec_folder=kernels.get,
    )


def verdict(
    guard: RequestGuard, route: str, method: str = "GET", **query: list[bytes]
) -> Verdict | None:
    return guard.decide(method, BASE + route, query)


@pytest.mark.parametrize(
    ("path", "route_class"),
    [
        ("files/data.csv", "files"),
        ("files/notes.txt", "files"),
        ("FILES/data.csv", "files"),
        ("%66iles/data.csv", "files"),
        ("files%2fdata.csv", "files"),
        ("lab/%2e%2e/files/data.csv", "files"),
        ("lab/../files/data.csv", "files"),
        ("lab/%252e%252e/files/data.csv", "files"),
        ("lab%5c..%5cfiles%5cdata.csv", "files"),
        ("/files/data.csv", "files"),
        ("files/data.csv/", "files"),
        ("files/../../bob/files/x", "files"),
        ("nbconvert/html/analysis.ipynb", "nbconvert"),
        ("nbconvert/html", "nbconvert"),
        ("view/data.csv", "view"),
        ("proxy/8000/data.csv", "proxy"),
        ("proxy/absolute/8000/data.csv", "proxy"),
        ("proxy/127.0.0.1:8000/data.csv", "proxy"),
        ("proxy/%38000/", "proxy"),
        ("rstudio/files/data.csv", "named-proxy"),
        ("vscode/proxy/8000/", "code-server-proxy"),
        ("vscode/absproxy/8000/", "code-server-proxy"),
        ("vscode/%70roxy/8000/", "code-server-proxy"),
        ("kernelspecs/python3/kernel.json", "kernelspec-file"),
        ("kernelspecs/evil/logo-64x64.png", "kernelspec-file"),
        ("kernelspecs/python3/..%2f..%2f..%2fhome%2fdata.csv", "kernelspec-file"),
        ("kernelspecs/nope/logo-64x64.png", "kernelspec-file"),
    ],
)
def test_closed_routes_whatever_the_encoding(
    tree: dict[str, Path], path: str, route_class: str
) -> None:
    found = verdict(make_guard(tree), path)
    assert found is not None and found.route_class == route_class


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_closed_routes_close_every_verb(tree: dict[str, Path], method: str) -> None:
    assert verdict(make_guard(tree), "files/data.csv", method) is not None


@pytest.mark.parametrize(
    "path",
    [
        "api/status",
        "api/kernels",
        "lab",
        "lab/tree/analysis.ipynb",
        "static/lab/main.js",
        "api/contents",
        "api/contents/analysis.ipynb",
        "api/contents/notes.txt",
        "api/contents/team",
        "api/contents/team/shared.md",
        "api/contents/sub",
        "api/contents/missing.ipynb",
        "api/contents/data.csv/checkpoints",
        "kernelspecs/python3/logo-64x64.png",
        "lab/extensions/good/static/remoteEntry.js",
        "vscode/",
        "vscode/stable-abc/static/out/vs/workbench.js",
        "api/terminals",
    ],
)
def test_the_editor_and_lab_keep_working(tree: dict[str, Path], path: str) -> None:
    assert verdict(make_guard(tree), path) is None


@pytest.mark.parametrize(
    ("path", "query", "reason"),
    [
        ("api/contents/data.csv", {}, "'.csv' files are not readable in the editor"),
        ("api/contents/data.csv", {"format": [b"text"]}, "'.csv' files"),
        ("api/contents/data.csv", {"content": [b"0", b"1"]}, "'.csv' files"),
        ("api/contents/notes.txt", {"format": [b"base64"]}, "not readable as base64"),
        ("api/contents/notes.txt", {"format": [b"text", b"base64"]}, "as base64"),
        ("api/contents/link.py", {}, "'.csv' files"),
        ("api/contents/disguised.py", {}, "holds Parquet data"),
        ("api/contents/nul.txt", {}, "binary content under a text file name"),
        ("api/contents/big.txt", {}, "larger than the 1024-byte editor limit"),
        ("api/contents/outside.txt", {}, "resolves outside the notebook folder"),
        ("api/contents/..%2foutside.txt", {}, "resolves outside the notebook folder"),
        ("api/contents/sub/%2e%2e/%2e%2e/outside.txt", {}, "resolves outside"),
        ("api/contents/README", {}, "files without an extension are not readable"),
    ],
)
def test_the_editor_reads_bounded_content_only(
    tree: dict[str, Path], path: str, query: dict[str, list[bytes]], reason: str
) -> None:
    found = verdict(make_guard(tree), path, **query)
    assert found is not None and found.route_class == "contents"
    assert reason in found.reason


def test_metadata_without_content_is_allowed_even_for_data_files(tree: dict[str, Path]) -> None:
    guard = make_guard(tree)
    assert verdict(guard, "api/contents/data.csv", content=[b"0"]) is None
    assert verdict(guard, "api/contents/data.csv", content=[b"1", b"0"]) is not None


def test_writes_through_a_symlink_out_of_the_root_are_refused(tree: dict[str, Path]) -> None:
    guard = make_guard(tree)
    found = verdict(guard, "api/contents/outside.txt", "PUT")
    assert found is not None and "resolves outside" in found.reason
    assert verdict(guard, "api/contents/notes.txt", "PUT") is None
    assert verdict(guard, "api/contents/team/new.md", "PUT") is None


def test_base64_is_allowed_for_configured_image_types(tree: dict[str, Path]) -> None:
    (tree["home"] / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    guard = make_guard(tree, base64_extensions=(".png",))
    assert verdict(guard, "api/contents/plot.png", format=[b"base64"]) is None
    assert verdict(make_guard(tree), "api/contents/plot.png", format=[b"base64"]) is not None


def test_planted_lab_extension_files_are_not_served(tree: dict[str, Path]) -> None:
    guard = make_guard(tree)
    planted = verdict(guard, "lab/extensions/evil/static/data.js")
    assert planted is not None and planted.route_class == "lab-extension-file"
    assert "the user can write to" in planted.reason
    missing = verdict(guard, "lab/extensions/evil/static/missing.js")
    assert missing is not None and "not found" in missing.reason


def test_code_server_resources_only_from_trusted_folders(tree: dict[str, Path]) -> None:
    guard = make_guard(tree)
    trusted = str(tree["system"] / "kernels" / "python3" / "kernel.json").encode()
    data = str(tree["home"] / "data.csv").encode()
    sneaky = str(tree["system"] / ".." / "home" / "data.csv").encode()
    route = "vscode/vscode-remote-resource"
    assert verdict(guard, route, path=[trusted]) is None
    for paths in ([data], [trusted, data], [data, trusted], [sneaky], [], [b"relative.txt"]):
        found = verdict(guard, route, path=paths)
        assert found is not None and found.route_class == "code-server-file", paths
    found = verdict(guard, "vscode/stable-1/vscode-remote-resource", path=[data])
    assert found is not None and found.route_class == "code-server-file"


def test_terminals_follow_the_policy(tree: dict[str, Path]) -> None:
    guard = make_guard(tree, terminals=False)
    for path in ("api/terminals", "api/terminals/1", "terminals/websocket/1"):
        found = verdict(guard, path)
        assert found is not None and found.route_class == "terminals"


def test_proxied_servers_follow_the_policy(tree: dict[str, Path]) -> None:
    closed = verdict(make_guard(tree, proxied_servers=()), "vscode/")
    assert closed is not None and closed.route_class == "named-proxy"
    opened = make_guard(tree, proxied_servers=("vscode", "rstudio"))
    assert verdict(opened, "rstudio/") is None


def test_the_verdict_carries_the_normalized_path(tree: dict[str, Path]) -> None:
    found = verdict(make_guard(tree), "lab/%2e%2e//files/%64ata.csv")
    assert found is not None and found.path == "files/data.csv"
