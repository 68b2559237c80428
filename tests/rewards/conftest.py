import pytest


@pytest.fixture
def rdb(db, reference_data):
    """Clean tables with the catalogue loaded (reward amounts come from it)."""
    return db


@pytest.fixture
def pay_app(sandbox_app, reference_data):
    """App pointed at the sandbox, context pushed, clean tables, catalogue loaded."""
    return sandbox_app
