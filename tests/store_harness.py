"""The store contract's fixtures, shared by every contract file (loaded from conftest).

A test asking for ``backend`` or ``store`` runs on SQLite and on PostgreSQL; a file that
needs a different ``store`` (an empty one, say) defines its own over this ``backend``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gridbot.config import load_config
from gridbot.store import Store
from tests.test_store import BACKENDS, EXAMPLE, Backend, make_backend


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = make_backend(request.param, tmp_path,
                        new_database=request.node.get_closest_marker("new_database") is not None)
    yield made
    made.close()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """An open store holding the sample org."""
    store = backend.new_store()
    await store.open()
    async with store.transaction() as tx:
        await tx.sync_org(load_config(EXAMPLE))
    yield store
    await store.close()
