"""moderation: photo hash band index (near-duplicate lookup) and review decisions

Revision ID: 0005_moderation
Revises: 0004_hazards
"""
from alembic import op
import sqlalchemy as sa

revision = '0005_moderation'
down_revision = '0004_hazards'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'photo_hash_bands',
        sa.Column('photo_id', sa.Integer(), nullable=False),
        sa.Column('band_key', sa.Integer(), nullable=False),
        sa.Column('phash', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_photo_hash_bands_photo_id_photos'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('photo_id', 'band_key', name=op.f('pk_photo_hash_bands')),
    )
    op.create_index('ix_photo_hash_bands_lookup', 'photo_hash_bands', ['band_key', 'phash', 'photo_id'], unique=False)
    op.create_table(
        'tip_media_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.Column('photo_id', sa.Integer(), nullable=False),
        sa.Column('trace_id', sa.String(length=64), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=True),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_tip_media_checks_photo_id_photos'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'], name=op.f('fk_tip_media_checks_tip_id_tips'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tip_media_checks')),
        sa.UniqueConstraint('trace_id', name=op.f('uq_tip_media_checks_trace_id')),
    )
    with op.batch_alter_table('tip_media_checks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tip_media_checks_applied_at'), ['applied_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_tip_media_checks_tip_id'), ['tip_id'], unique=False)
    op.create_table(
        'review_decisions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tip_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('from_status', sa.String(length=16), nullable=False),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('category', sa.String(length=48), nullable=True),
        sa.Column('severity', sa.SmallInteger(), nullable=True),
        sa.Column('reason', sa.String(length=64), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('department', sa.String(length=32), nullable=True),
        sa.Column('duplicate_of', sa.JSON(), nullable=True),
        sa.Column('answer', sa.JSON(), nullable=True),
        sa.Column('reversed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reversed_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['staff_users.id'], name=op.f('fk_review_decisions_actor_id_staff_users')),
        sa.ForeignKeyConstraint(['reversed_by'], ['staff_users.id'],
                                name=op.f('fk_review_decisions_reversed_by_staff_users')),
        sa.ForeignKeyConstraint(['tip_id'], ['tips.id'], name=op.f('fk_review_decisions_tip_id_tips'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions')),
    )
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_decisions_tip_id'), ['tip_id'], unique=False)


def downgrade():
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_decisions_tip_id'))
    op.drop_table('review_decisions')
    with op.batch_alter_table('tip_media_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tip_media_checks_tip_id'))
        batch_op.drop_index(batch_op.f('ix_tip_media_checks_applied_at'))
    op.drop_table('tip_media_checks')
    op.drop_index('ix_photo_hash_bands_lookup', table_name='photo_hash_bands')
    op.drop_table('photo_hash_bands')
