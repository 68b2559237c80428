"""moderation tables (placeholder until the area fills it in)

Revision ID: 0005_moderation
Revises: 0004_hazards
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0005_moderation'
down_revision = '0004_hazards'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
