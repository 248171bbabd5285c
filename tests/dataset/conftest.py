"""Tiny models run no slower on one thread, and far steadier on a shared 2-core machine (see ENVIRONMENT.md)."""

import pytest

from ..threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield
