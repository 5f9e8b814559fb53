"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (real multilingual samples; see its README)."""
    if not (SHARED_DATA / "sib200").is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the tests need ../shared beside the checkout")
    return SHARED_DATA
