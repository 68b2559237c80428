"""hazards (issue #18): (department_id, id) for a department's ticket list newest first — at 1 M
tickets a small department's open list read ~1,900 pages through the primary key, 107 this way
(bench/province.py)

Revision ID: 0016_hazards_department_index
Revises: 0015_ledger_day_balances
"""
from alembic import op

revision = '0016_hazards_department_index'
down_revision = '0015_ledger_day_balances'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_hazards_department_id', 'hazards', ['department_id', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_hazards_department_id', table_name='hazards')
