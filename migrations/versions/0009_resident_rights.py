"""resident rights: account closure (closing_at, closed_at, held_openid) and the location purge mark

Revision ID: 0009_resident_rights
Revises: 0008_audit_client_addr
"""
from alembic import op
import sqlalchemy as sa

revision = '0009_resident_rights'
down_revision = '0008_audit_client_addr'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('residents') as batch:
        batch.add_column(sa.Column('closing_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('held_openid', sa.String(length=64), nullable=True))
    with op.batch_alter_table('tips') as batch:
        batch.add_column(sa.Column('location_purged_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('tips') as batch:
        batch.drop_column('location_purged_at')
    with op.batch_alter_table('residents') as batch:
        batch.drop_column('held_openid')
        batch.drop_column('closed_at')
        batch.drop_column('closing_at')
