"""The guard's path normalizer: every reading of a request path, as tornado and proxies see it."""

from __future__ import annotations

import pytest
from kumohub.extensions.guard.paths import (
    decode_fully,
    is_plain,
    normalize,
    path_forms,
    relative_to_base,
    segments,
)

BASE = "/user/alice/"


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("files/data.csv", "files/data.csv"),
        ("%66iles/data.csv", "files/data.csv"),
        ("files%2fdata.csv", "files/data.csv"),
        ("%2e%2e/%2E%2E/etc", "../../etc"),
        ("%252e%252e/x", "../x"),
        ("%25252566iles", "files"),
        ("a%00b", "a\x00b"),
    ],
)
def test_decode_fully_undoes_stacked_percent_encoding(raw: str, decoded: str) -> None:
    assert decode_fully(raw) == decoded


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("/user/alice/lab/../files/data.csv", "/user/alice/files/data.csv"),
        ("/user/alice//files///data.csv", "/user/alice/files/data.csv"),
        ("/user/alice/./files/./data.csv/", "/user/alice/files/data.csv"),
        ("/user/alice/lab\\..\\files\\data.csv", "/user/alice/files/data.csv"),
        ("/../../../etc/passwd", "/etc/passwd"),
        ("/user/alice/files/../../bob/files/x", "/user/bob/files/x"),
        ("", "/"),
    ],
)
def test_normalize_resolves_dot_segments_and_separators(path: str, normalized: str) -> None:
    assert normalize(path) == normalized


def test_relative_to_base_strips_the_server_prefix_only() -> None:
    assert relative_to_base("/user/alice/files/x", BASE) == "files/x"
    assert relative_to_base("/user/alice//files/x", BASE) == "files/x"
    assert relative_to_base("/user/alice", BASE) == ""
    assert relative_to_base("/user/bob/files/x", BASE) == "user/bob/files/x"


def test_every_reading_of_an_encoded_path() -> None:
    forms = path_forms("/user/alice/lab/%2e%2e/%2566iles/data.csv", BASE)
    assert forms.routed == "lab/%2e%2e/%2566iles/data.csv"
    assert forms.captured == "lab/../%66iles/data.csv"
    assert forms.decoded == "lab/../files/data.csv"
    assert forms.normalized == "files/data.csv"
    assert forms.readings() == (
        forms.routed,
        forms.captured,
        forms.decoded,
        forms.normalized,
    )


def test_a_path_leaving_the_base_url_keeps_its_raw_route() -> None:
    forms = path_forms("/user/alice/files/..%2f..%2fbob/files/x", BASE)
    assert segments(forms.routed)[0] == "files"  # the route tornado picks
    assert forms.normalized == "user/bob/files/x"


def test_an_encoded_base_url_is_judged_relative_to_the_server_root() -> None:
    forms = path_forms("/user/%61lice/files/x", BASE)
    assert forms.routed == "user/%61lice/files/x"
    assert forms.normalized == "files/x"


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("/user/alice/api/status", True),
        ("/user/alice/api/contents/a/b.ipynb", True),
        ("/user/alice/files%2fx", False),
        ("/user/alice//files/x", False),
        ("/user/alice/lab/../files", False),
        ("/user/alice/.hidden", False),
        ("/user/alice/lab\\x", False),
    ],
)
def test_plain_paths_need_a_single_reading(raw: str, plain: bool) -> None:
    assert is_plain(raw) is plain
    if plain:
        assert len(set(path_forms(raw, BASE).readings())) == 1


def test_segments_ignore_empty_parts() -> None:
    assert segments("//files//x/") == ["files", "x"]
    assert segments("") == []
