"""residents tables (placeholder until the area fills it in)

Revision ID: 0007_residents
Revises: 0006_rewards
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0007_residents'
down_revision = '0006_rewards'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
