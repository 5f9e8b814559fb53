"""The near-duplicate cluster report: counts, sizes, per-language duplicates and example pairs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bloomkit.data_tooling.dedup.shingles import shingles
from bloomkit.data_tooling.pipeline.base import Document


def example_clusters(clusters: Sequence[Sequence[Any]], examples: int) -> list[int]:
    """Indices of the ``examples`` largest clusters, largest first (ties in input order)."""
    return sorted(range(len(clusters)), key=lambda c: len(clusters[c]), reverse=True)[:examples]


def _snippet(doc: Document, width: int) -> dict[str, Any]:
    text = " ".join(doc.text.split())
    return {
        "id": doc.id,
        "language": doc.language,
        "text": text if len(text) <= width else text[: width - 1] + "…",
    }


def summarise(
    clusters: Sequence[Sequence[str]],
    documents: int,
    removed_by_language: Mapping[str, int],
    samples: Mapping[str, Document],
    examples: int = 5,
    n_gram: int = 5,
    width: int = 160,
) -> dict[str, Any]:
    """The report from counts and the first two documents (``samples``, by id) of the
    :func:`example_clusters`; see :func:`cluster_report`."""
    duplicates = sum(len(c) - 1 for c in clusters)
    pairs = []
    for c in example_clusters(clusters, examples):
        kept, removed = samples[clusters[c][0]], samples[clusters[c][1]]
        a = shingles(kept.text, kept.language, n_gram)
        b = shingles(removed.text, removed.language, n_gram)
        pairs.append(
            {
                "cluster_size": len(clusters[c]),
                "jaccard": round(len(a & b) / max(len(a | b), 1), 3),
                "kept": _snippet(kept, width),
                "removed": _snippet(removed, width),
            }
        )
    return {
        "documents": documents,
        "clusters": len(clusters),
        "duplicates": duplicates,
        "duplicate_rate": duplicates / documents if documents else 0.0,
        "largest_cluster": max((len(c) for c in clusters), default=0),
        "cluster_sizes": dict(sorted(Counter(len(c) for c in clusters).items())),
        "duplicates_by_language": dict(sorted(removed_by_language.items())),
        "examples": pairs,
    }


def cluster_report(
    clusters: Sequence[Sequence[str]],
    docs: Iterable[Document],
    examples: int = 5,
    n_gram: int = 5,
    width: int = 160,
) -> dict[str, Any]:
    """Counts, duplicate rate, sizes and example pairs (largest clusters first) of a clustering.

    Each example pairs a cluster's kept document with one it removed, with their exact
    Jaccard similarity on ``n_gram`` shingles and text snippets of ``width`` characters.
    ``docs`` (all clustered documents, unique ids) is streamed: only the examples are held.
    """
    removed = {i for c in clusters for i in c[1:]}
    wanted = {i for c in example_clusters(clusters, examples) for i in clusters[c][:2]}
    count, by_language, samples = 0, Counter[str](), {}
    for doc in docs:
        count += 1
        if doc.id in removed:
            by_language[doc.language or "unknown"] += 1
        if doc.id in wanted:
            samples[doc.id] = doc
    return summarise(clusters, count, by_language, samples, examples, n_gram, width)
