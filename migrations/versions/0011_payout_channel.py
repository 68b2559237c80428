"""payouts: the channel a payout is paid through (redpack | transfer), kept for its whole life so a
change of PAYOUT_CHANNEL never strands a payout in flight

Revision ID: 0011_payout_channel
Revises: 0010_staff_login_throttle
"""
from alembic import op
import sqlalchemy as sa

revision = '0011_payout_channel'
down_revision = '0010_staff_login_throttle'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payouts') as batch:
        batch.add_column(sa.Column('channel', sa.String(length=16), nullable=False, server_default='redpack'))


def downgrade():
    with op.batch_alter_table('payouts') as batch:
        batch.drop_column('channel')
