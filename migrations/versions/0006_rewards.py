"""rewards: payouts, cap counters, budget periods, append-only double-entry ledger, reconciliation,
policy versions, dual-control finance requests

Revision ID: 0006_rewards
Revises: 0005_moderation
"""
from alembic import op
import sqlalchemy as sa

revision = '0006_rewards'
down_revision = '0005_moderation'
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_entries", "ledger_transactions")


def upgrade():
    op.create_table('payouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tip_id', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.Integer(), nullable=False),
    sa.Column('hazard_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=48), nullable=False),
    sa.Column('severity', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('period', sa.String(length=7), nullable=True),
    sa.Column('business_day', sa.Date(), nullable=True),
    sa.Column('mch_billno', sa.String(length=28), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_code', sa.String(length=32), nullable=True),
    sa.Column('detail_id', sa.String(length=64), nullable=True),
    sa.Column('package', sa.Text(), nullable=True),
    sa.Column('reserved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_call_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_fen >= 0', name=op.f('ck_payouts_amount_nonnegative')),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], name=op.f('fk_payouts_resident_id_residents')),
    sa.ForeignKeyConstraint(['tip_id'], ['tips.id'], name=op.f('fk_payouts_tip_id_tips')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('mch_billno', name=op.f('uq_payouts_mch_billno')),
    sa.UniqueConstraint('tip_id', name=op.f('uq_payouts_tip_id'))
    )
    op.create_index('ix_payouts_hazard', 'payouts', ['hazard_id'], unique=False)
    op.create_index('ix_payouts_resident', 'payouts', ['resident_id', 'id'], unique=False)
    op.create_index('ix_payouts_status_check', 'payouts', ['status', 'next_check_at'], unique=False)

    op.create_table('reward_claims',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('tip_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_reward_claims'))
    )
    op.create_table('reward_counters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=24), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=10), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('count >= 0 AND amount_fen >= 0', name=op.f('ck_reward_counters_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_counters')),
    sa.UniqueConstraint('scope', 'subject_id', 'period', name=op.f('uq_reward_counters_scope_subject_id_period'))
    )
    op.create_table('budget_periods',
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('funded_fen', sa.BigInteger(), nullable=False),
    sa.Column('available_fen', sa.BigInteger(), nullable=False),
    sa.Column('reserved_fen', sa.BigInteger(), nullable=False),
    sa.Column('committed_fen', sa.BigInteger(), nullable=False),
    sa.Column('expired_fen', sa.BigInteger(), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('available_fen >= 0 AND reserved_fen >= 0 AND committed_fen >= 0',
                       name=op.f('ck_budget_periods_nonnegative')),
    sa.PrimaryKeyConstraint('period', name=op.f('pk_budget_periods'))
    )
    op.create_table('ledger_transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('period', sa.String(length=7), nullable=True),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('memo', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['payout_id'], ['payouts.id'], name=op.f('fk_ledger_transactions_payout_id_payouts')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transactions.id'],
                            name=op.f('fk_ledger_transactions_reverses_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions'))
    )
    op.create_index('ix_ledger_transactions_day', 'ledger_transactions', ['business_day', 'kind'], unique=False)
    op.create_index('ix_ledger_transactions_payout', 'ledger_transactions', ['payout_id', 'kind'], unique=False)
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=48), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount_fen <> 0', name=op.f('ck_ledger_entries_nonzero')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'],
                            name=op.f('fk_ledger_entries_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    op.create_index('ix_ledger_entries_account', 'ledger_entries', ['account'], unique=False)
    op.create_index('ix_ledger_entries_payout', 'ledger_entries', ['payout_id', 'account'], unique=False)
    op.create_index(op.f('ix_ledger_entries_transaction_id'), 'ledger_entries', ['transaction_id'], unique=False)

    op.create_table('reconciliation_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bill_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.Column('bill_rows', sa.Integer(), nullable=False),
    sa.Column('bill_expense_fen', sa.BigInteger(), nullable=False),
    sa.Column('bill_income_fen', sa.BigInteger(), nullable=False),
    sa.Column('ledger_expense_fen', sa.BigInteger(), nullable=False),
    sa.Column('ledger_income_fen', sa.BigInteger(), nullable=False),
    sa.Column('matched', sa.Integer(), nullable=False),
    sa.Column('exception_count', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_runs'))
    )
    op.create_index(op.f('ix_reconciliation_runs_bill_date'), 'reconciliation_runs', ['bill_date'], unique=False)
    op.create_table('reconciliation_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=True),
    sa.Column('mch_billno', sa.String(length=40), nullable=True),
    sa.Column('payout_id', sa.Integer(), nullable=True),
    sa.Column('bill_fen', sa.BigInteger(), nullable=True),
    sa.Column('ledger_fen', sa.BigInteger(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('adjustment_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'],
                            name=op.f('fk_reconciliation_exceptions_run_id_reconciliation_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_exceptions'))
    )
    op.create_index(op.f('ix_reconciliation_exceptions_run_id'), 'reconciliation_exceptions', ['run_id'],
                    unique=False)
    op.create_table('reconciliation_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('mch_billno', sa.String(length=40), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['reconciliation_runs.id'],
                            name=op.f('fk_reconciliation_lines_run_id_reconciliation_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reconciliation_lines'))
    )
    op.create_index('ix_reconciliation_lines_run', 'reconciliation_lines', ['run_id', 'direction', 'mch_billno'],
                    unique=False)
    op.create_table('reward_policies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('approved_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reward_policies'))
    )
    op.create_table('finance_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_finance_requests'))
    )
    _append_only_triggers()


def _append_only_triggers():
    """The ledger refuses UPDATE and DELETE in the database itself, not only in the ORM."""
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"""
                CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
                BEGIN
                    RAISE EXCEPTION '{table} is append-only: post a correcting transaction';
                END $$ LANGUAGE plpgsql""")
            op.execute(f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OR DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()")
        else:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: post a correcting transaction'); END")


def _drop_triggers():
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        else:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")


def downgrade():
    _drop_triggers()
    op.drop_table('finance_requests')
    op.drop_table('reward_policies')
    op.drop_index('ix_reconciliation_lines_run', table_name='reconciliation_lines')
    op.drop_table('reconciliation_lines')
    op.drop_index(op.f('ix_reconciliation_exceptions_run_id'), table_name='reconciliation_exceptions')
    op.drop_table('reconciliation_exceptions')
    op.drop_index(op.f('ix_reconciliation_runs_bill_date'), table_name='reconciliation_runs')
    op.drop_table('reconciliation_runs')
    op.drop_index(op.f('ix_ledger_entries_transaction_id'), table_name='ledger_entries')
    op.drop_index('ix_ledger_entries_payout', table_name='ledger_entries')
    op.drop_index('ix_ledger_entries_account', table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_index('ix_ledger_transactions_payout', table_name='ledger_transactions')
    op.drop_index('ix_ledger_transactions_day', table_name='ledger_transactions')
    op.drop_table('ledger_transactions')
    op.drop_table('budget_periods')
    op.drop_table('reward_counters')
    op.drop_table('reward_claims')
    op.drop_index('ix_payouts_status_check', table_name='payouts')
    op.drop_index('ix_payouts_resident', table_name='payouts')
    op.drop_index('ix_payouts_hazard', table_name='payouts')
    op.drop_table('payouts')
