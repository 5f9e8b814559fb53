"""Opt-outs: ids, URLs and domains removed, counted per entry, and proven absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from bloomkit.config import ConfigError
from bloomkit.data_tooling.pipeline.base import Document
from bloomkit.data_tooling.pipeline.optout import (
    OptOut,
    OptOutList,
    load_optouts,
    optout_report,
    verify_optouts,
)

OPTOUTS = """\
ids: [doc-secret]
urls:
  - https://Blog.Example.com/post-1/
domains:
  - example.org
  - never-seen.net
"""


def doc(doc_id: str, url: str | None = None) -> Document:
    return Document(doc_id, "text", language="en", metadata={"url": url} if url else {})


DOCS = [
    doc("doc-secret", "https://kept.example.net/"),  # listed id, whatever its URL
    doc("a", "http://blog.example.com/post-1"),  # same page: scheme, case, slash
    doc("b", "HTTPS://BLOG.EXAMPLE.COM:443/post-1#comments"),
    doc("c", "https://blog.example.com/post-2"),  # another page of that host: kept
    doc("d", "https://example.org/about"),  # listed domain
    doc("e", "https://news.fr.example.org/x"),  # its subdomains
    doc("f", "https://notexample.org/x"),  # a look-alike is not a subdomain
    doc("g", "https://example.org.evil.com/x"),
    doc("h"),  # no URL
    doc("i", "https://example.org:bad/x"),  # malformed port, host still listed
]


@pytest.fixture
def optouts(tmp_path: Path) -> OptOutList:
    path = tmp_path / "optout.yaml"
    path.write_text(OPTOUTS, encoding="utf-8")
    return load_optouts(path)


def run(optouts: OptOutList) -> tuple[list[Document], list[tuple[str, str]], OptOut]:
    step = OptOut(optouts)
    removed: list[tuple[str, str]] = []
    step.removed_sink = lambda d, name, reason: removed.append((d.id, reason))
    return list(step.run(DOCS)), removed, step


def test_removes_ids_urls_domains_and_subdomains(optouts: OptOutList):
    kept, removed, step = run(optouts)
    assert [d.id for d in kept] == ["c", "f", "g", "h"]
    assert removed == [
        ("doc-secret", "optout:id:doc-secret"),
        ("a", "optout:url:https://Blog.Example.com/post-1/"),
        ("b", "optout:url:https://Blog.Example.com/post-1/"),
        ("d", "optout:domain:example.org"),
        ("e", "optout:domain:example.org"),
        ("i", "optout:domain:example.org"),
    ]
    assert step.stats.counts["seen"] == len(DOCS)
    assert step.stats.counts["kept"] + step.stats.counts["removed"] == len(DOCS)


def test_report_counts_every_entry_and_output_is_proven_clean(optouts: OptOutList):
    kept, _, step = run(optouts)
    assert optout_report(step.stats, optouts) == [
        {"entry": "id:doc-secret", "removed": 1},
        {"entry": "url:https://Blog.Example.com/post-1/", "removed": 2},
        {"entry": "domain:example.org", "removed": 3},
        {"entry": "domain:never-seen.net", "removed": 0},
    ]
    assert verify_optouts(kept, optouts) == []
    assert verify_optouts(DOCS, optouts) == ["doc-secret", "a", "b", "d", "e", "i"]


def test_report_sums_merged_shard_stats(optouts: OptOutList):
    _, _, first = run(optouts)
    _, _, second = run(optouts)
    report = optout_report(first.stats + second.stats, optouts)
    assert [row["removed"] for row in report] == [2, 4, 6, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("urls:\n  - https://ok.com/a\n  - not a url\n", ":3: urls.1: expected an absolute URL"),
        ("domains:\n  - example.com\n  - https://x.org\n", ":3: domains.1: expected a bare domain"),
        ("ids: [a]\nsites: [x.org]\n", ":2: sites: unknown field"),
        ("urls: [https://a.com/x, http://A.com/x/]\n", ":1: urls: URL 'http://A.com/x/' repeats"),
        ("ids: [a\n", ":2: invalid YAML"),
    ],
)
def test_bad_list_names_file_line_and_field(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "optout.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_optouts(path)
    assert f"{path}{expected}" in str(err.value)
