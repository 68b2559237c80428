"""hazards tables (placeholder until the area fills it in)

Revision ID: 0004_hazards
Revises: 0003_wechat
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0004_hazards'
down_revision = '0003_wechat'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
