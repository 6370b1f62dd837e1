"""docs/rf.md's examples run and print what the page says (doctest over the page)."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "rf.md"


# the 2γτ̂ = 8 row of the page's threshold table warns, as the page says
@pytest.mark.filterwarnings("ignore::rmtcompress.errors.MatchWarning")
def test_rf_page_examples() -> None:
    result = doctest.testfile(
        str(DOC),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted > 0
    assert result.failed == 0
