"""Deduplication steps: unique ids, exact (normalised-text hash), near-duplicate (MinHash-LSH).

Public API: :class:`UniqueIds` (``unique_id``) and :class:`ExactDedup` (``dedup_exact``), both
:class:`FirstOccurrence` steps over sorted on-disk runs, :class:`MinHashDedup`
(``dedup_minhash``) with :class:`MinHashConfig` and the streaming :class:`MinHashIndex`,
:func:`near_duplicate_clusters`, :func:`cluster_report`, and the language-aware
:func:`shingles` they share.
"""

from bloomkit.data_tooling.dedup.exact import ExactDedup, FirstOccurrence, UniqueIds, exact_key
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
    "FirstOccurrence",
    "MinHashConfig",
    "MinHashDedup",
    "MinHashIndex",
    "UniqueIds",
    "cluster_report",
    "exact_key",
    "near_duplicate_clusters",
    "normalise",
    "shingle_hashes",
    "shingles",
    "unspaced",
]
