"""staff: no account lock in the database (login failures are throttled per account and address in
Redis, app/login_throttle.py): drop failed_logins and locked_until

Revision ID: 0010_staff_login_throttle
Revises: 0009_resident_rights
"""
from alembic import op
import sqlalchemy as sa

revision = '0010_staff_login_throttle'
down_revision = '0009_resident_rights'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_users') as batch:
        batch.drop_column('locked_until')
        batch.drop_column('failed_logins')


def downgrade():
    with op.batch_alter_table('staff_users') as batch:
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
