"""residents: photos whose display copy is made off the request (media_pending_displays)

Revision ID: 0007_residents
Revises: 0006_rewards
"""
from alembic import op
import sqlalchemy as sa

revision = '0007_residents'
down_revision = '0006_rewards'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'media_pending_displays',
        sa.Column('photo_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['photo_id'], ['photos.id'], name=op.f('fk_media_pending_displays_photo_id_photos'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('photo_id', name=op.f('pk_media_pending_displays')),
    )


def downgrade():
    op.drop_table('media_pending_displays')
