"""grids: the 社区/村 (community) a grid belongs to, below its 镇街; optional (a grid file may not
have it), shown beside the grid's name and 镇街 on the console's maps

Revision ID: 0013_grid_community
Revises: 0012_payout_pauses
"""
from alembic import op
import sqlalchemy as sa

revision = '0013_grid_community'
down_revision = '0012_payout_pauses'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('grids') as batch:
        batch.add_column(sa.Column('community', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('grids') as batch:
        batch.drop_column('community')
