"""Offline language identification for the 46 BLOOM languages (ensemble + our n-gram model).

Public API: :class:`LanguageID` (pipeline step), :class:`LanguageIdentifier` and
:func:`identify` (one text -> :class:`Prediction`), :func:`read_support` (the measured
support table), :func:`is_code` / :func:`code_language` (programming-language hints).
"""

from bloomkit.data_tooling.lid.codes import code_language, is_code
from bloomkit.data_tooling.lid.identifier import (
    UNKNOWN,
    LanguageIdentifier,
    Prediction,
    identify,
    read_support,
)
from bloomkit.data_tooling.lid.step import LanguageID

__all__ = [
    "UNKNOWN",
    "LanguageID",
    "LanguageIdentifier",
    "Prediction",
    "code_language",
    "identify",
    "is_code",
    "read_support",
]
