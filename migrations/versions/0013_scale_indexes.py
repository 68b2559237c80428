"""scale (issue #18): the moderator's held-lease check reads a partial index of the tips being
claimed (claimed_by is cleared by every decision, so it holds about one row per moderator) instead
of walking the whole pending queue (1 M pending at a province's scale: bench/province.py)

Revision ID: 0013_scale_indexes
Revises: 0012_payout_pauses
"""
from alembic import op
import sqlalchemy as sa

revision = '0013_scale_indexes'
down_revision = '0012_payout_pauses'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tips_claimed_by', 'tips', ['claimed_by'], unique=False,
                    postgresql_where=sa.text('claimed_by IS NOT NULL'),
                    sqlite_where=sa.text('claimed_by IS NOT NULL'))


def downgrade():
    op.drop_index('ix_tips_claimed_by', table_name='tips')
