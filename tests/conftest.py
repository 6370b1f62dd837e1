"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module")
def single_threaded() -> Iterator[None]:
    """Run a module with one torch and one BLAS thread; the previous torch setting is restored.

    On a busy 2-core machine two spinning threads per library make small kernels several times slower; results are
    unaffected beyond reduction order. Modules opt in with ``pytestmark = pytest.mark.usefixtures("single_threaded")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)
