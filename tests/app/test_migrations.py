"""The schema comes from the migrations; a model change without a migration fails here."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.extensions import db as database


def test_models_and_migrations_agree(app):
    with app.app_context():
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, database.metadata)
    assert diff == [], f"models and migrations drifted apart; write a migration for: {diff}"


def test_upgrade_from_empty_twice_is_a_no_op(flask_cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = flask_cli("db", "upgrade", env={"DATABASE_URL": url})
    second = flask_cli("db", "upgrade", env={"DATABASE_URL": url})
    assert first.returncode == second.returncode == 0
    current = flask_cli("db", "current", env={"DATABASE_URL": url})
    assert "(head)" in current.stdout
