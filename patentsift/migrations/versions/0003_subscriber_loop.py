"""subscriber loop: outlet identity (sender name, contact address, footer note), a subscription's
send-when-empty choice and when its confirmation message was last mailed

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sub_outlets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sender_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('contact_address', sa.String(length=500), server_default='',
                                      nullable=False))
        batch_op.add_column(sa.Column('footer_note', sa.Text(), server_default='', nullable=False))

    with op.batch_alter_table('sub_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_when_empty', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('confirmation_sent_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sub_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('confirmation_sent_at')
        batch_op.drop_column('send_when_empty')

    with op.batch_alter_table('sub_outlets', schema=None) as batch_op:
        batch_op.drop_column('footer_note')
        batch_op.drop_column('contact_address')
        batch_op.drop_column('sender_name')
