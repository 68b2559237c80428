"""rewards (issue #18): ledger_day_balances, the sum of each account's entries per business day, kept
by ledger.post in the posting transaction and backfilled here from the entries. The finance
summary's opening and closing in-flight balances sum days instead of every entry ever posted
(4.7 s for a month at 1/10 of a province's data: bench/province.py, docs/PERFORMANCE.md).

Revision ID: 0015_ledger_day_balances
Revises: 0014_scale_indexes
"""
from alembic import op
import sqlalchemy as sa

revision = '0015_ledger_day_balances'
down_revision = '0014_scale_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ledger_day_balances',
        sa.Column('account', sa.String(length=48), nullable=False),
        sa.Column('business_day', sa.Date(), nullable=False),
        sa.Column('amount_fen', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('account', 'business_day', name=op.f('pk_ledger_day_balances')),
    )
    op.execute("INSERT INTO ledger_day_balances (account, business_day, amount_fen) "
               "SELECT e.account, t.business_day, sum(e.amount_fen) FROM ledger_entries e "
               "JOIN ledger_transactions t ON t.id = e.transaction_id GROUP BY e.account, t.business_day")


def downgrade():
    op.drop_table('ledger_day_balances')
