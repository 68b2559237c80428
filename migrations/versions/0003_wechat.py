"""wechat: asynchronous media checks matched by trace_id

Revision ID: 0003_wechat
Revises: 0002_residents_tips
Create Date: 2026-11-26 19:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_wechat'
down_revision = '0002_geo_catalogue'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('wechat_media_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=64), nullable=False),
    sa.Column('media_url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('suggest', sa.String(length=16), nullable=True),
    sa.Column('label', sa.Integer(), nullable=True),
    sa.Column('errcode', sa.Integer(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wechat_media_checks')),
    sa.UniqueConstraint('trace_id', name=op.f('uq_wechat_media_checks_trace_id'))
    )


def downgrade():
    op.drop_table('wechat_media_checks')
