"""scale (issue #18): the moderator's held-lease check reads a partial index of the tips being
claimed (claimed_by is cleared by every decision, so it holds about one row per moderator) instead
of walking the whole pending queue (1 M pending at a province's scale: bench/province.py); intake's
search for pending tips of the same category nearby reads the latitude band from the index
(category, status, lat, lng) instead of every pending tip of the category (2,450 pages per tip at
1/10 of a province)

Revision ID: 0014_scale_indexes
Revises: 0013_grid_community
"""
from alembic import op
import sqlalchemy as sa

revision = '0014_scale_indexes'
down_revision = '0013_grid_community'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_tips_claimed_by', 'tips', ['claimed_by'], unique=False,
                    postgresql_where=sa.text('claimed_by IS NOT NULL'),
                    sqlite_where=sa.text('claimed_by IS NOT NULL'))
    op.create_index('ix_tips_category_status_place', 'tips', ['category', 'status', 'lat', 'lng'], unique=False)
    op.drop_index('ix_tips_category_status', table_name='tips')


def downgrade():
    op.create_index('ix_tips_category_status', 'tips', ['category', 'status'], unique=False)
    op.drop_index('ix_tips_category_status_place', table_name='tips')
    op.drop_index('ix_tips_claimed_by', table_name='tips')
