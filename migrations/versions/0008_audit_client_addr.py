"""audit: the client address of staff actions (read through TRUSTED_PROXY_COUNT proxies)

Revision ID: 0008_audit_client_addr
Revises: 0007_residents
"""
from alembic import op
import sqlalchemy as sa

revision = '0008_audit_client_addr'
down_revision = '0007_residents'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('audit_entries', sa.Column('client_addr', sa.String(length=45), nullable=True))


def downgrade():
    with op.batch_alter_table('audit_entries') as batch:
        batch.drop_column('client_addr')
