"""Deduplication steps: exact (normalised-text hash) and near-duplicate (MinHash-LSH).

Public API: :class:`ExactDedup` (``dedup_exact``), :class:`MinHashDedup` (``dedup_minhash``)
with :class:`MinHashConfig` and the streaming :class:`MinHashIndex`,
:func:`near_duplicate_clusters`, :func:`cluster_report`, and the language-aware
:func:`shingles` they share.
"""

from bloomkit.data_tooling.dedup.exact import ExactDedup, exact_key
from bloomkit.data_tooling.dedup.minhash import (
    MinHashConfig,
    MinHashDedup,
    MinHashIndex,
    near_duplicate_clusters,
)
from bloomkit.data_tooling.dedup.report import cluster_report
from bloomkit.data_tooling.dedup.shingles import normalise, shingle_hashes, shingles, unspaced

__all__ = [
    "ExactDedup",
    "MinHashConfig",
    "MinHashDedup",
    "MinHashIndex",
    "cluster_report",
    "exact_key",
    "near_duplicate_clusters",
    "normalise",
    "shingle_hashes",
    "shingles",
    "unspaced",
]
