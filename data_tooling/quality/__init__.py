"""Per-language quality filters for the 46 BLOOM languages, thresholds derived from clean text.

Public API: :class:`QualityFilter` (all checks, one pass) and the single-check filters
:class:`LengthFilter`, :class:`SpecialCharFilter`, :class:`MojibakeFilter`,
:class:`BoilerplateFilter`, :class:`WordRepetitionFilter`, :class:`CharRepetitionFilter`,
:class:`StopwordFilter`, :class:`FlaggedWordsFilter`; :data:`CHECKS` (reason -> check),
:func:`profile` (a language's thresholds and lists) and :func:`words` (segmentation).
"""

from bloomkit.data_tooling.quality.filters import (
    CHECKS,
    BoilerplateFilter,
    CharRepetitionFilter,
    FlaggedWordsFilter,
    LengthFilter,
    MojibakeFilter,
    QualityFilter,
    SpecialCharFilter,
    StopwordFilter,
    WordRepetitionFilter,
)
from bloomkit.data_tooling.quality.profiles import Profile, Thresholds, profile
from bloomkit.data_tooling.quality.signals import Analysis, words

__all__ = [
    "CHECKS",
    "Analysis",
    "BoilerplateFilter",
    "CharRepetitionFilter",
    "FlaggedWordsFilter",
    "LengthFilter",
    "MojibakeFilter",
    "Profile",
    "QualityFilter",
    "SpecialCharFilter",
    "StopwordFilter",
    "Thresholds",
    "WordRepetitionFilter",
    "profile",
    "words",
]
