"""rewards: merchant-wide payout pauses (payout_pauses) and the billnos a payout gave up
(payouts.previous_billnos) — issue #15's decision table

Revision ID: 0012_payout_pauses
Revises: 0011_payout_channel
"""
from alembic import op
import sqlalchemy as sa

revision = '0012_payout_pauses'
down_revision = '0011_payout_channel'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('payout_pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mch_id', sa.String(length=32), nullable=False),
    sa.Column('open_key', sa.String(length=32), nullable=True),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resume_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_probe_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_how', sa.String(length=16), nullable=True),
    sa.Column('ended_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('open_key')
    )
    op.create_index('ix_payout_pauses_started', 'payout_pauses', ['started_at'], unique=False)
    with op.batch_alter_table('payouts') as batch:
        batch.add_column(sa.Column('previous_billnos', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('payouts') as batch:
        batch.drop_column('previous_billnos')
    op.drop_index('ix_payout_pauses_started', table_name='payout_pauses')
    op.drop_table('payout_pauses')
