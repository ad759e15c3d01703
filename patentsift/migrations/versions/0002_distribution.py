"""distribution: curation queue, audit, deliveries, sent items

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:37:30.130272
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dist_audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('who', sa.String(length=320), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dist_audit_events'))
    )
    with op.batch_alter_table('dist_audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dist_audit_events_at'), ['at'], unique=False)

    op.create_table('dist_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=64), nullable=False),
    sa.Column('idempotency_key', sa.String(length=120), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('item_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed_permanent', 'failed_transient')", name=op.f('ck_dist_deliveries_status')),
    sa.ForeignKeyConstraint(['subscription_id'], ['sub_subscriptions.id'], name=op.f('fk_dist_deliveries_subscription_id_sub_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dist_deliveries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_dist_deliveries_idempotency_key')),
    sa.UniqueConstraint('message_id', name=op.f('uq_dist_deliveries_message_id'))
    )
    with op.batch_alter_table('dist_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dist_deliveries_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_dist_deliveries_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('dist_review_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('doc_id', sa.String(length=64), nullable=False),
    sa.Column('profile_name', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('explanation', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=320), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_dist_review_items_status')),
    sa.ForeignKeyConstraint(['subscription_id'], ['sub_subscriptions.id'], name=op.f('fk_dist_review_items_subscription_id_sub_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dist_review_items')),
    sa.UniqueConstraint('subscription_id', 'match_id', name=op.f('uq_dist_review_items_subscription_id_match_id'))
    )
    with op.batch_alter_table('dist_review_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dist_review_items_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_dist_review_items_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('dist_sent_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('item_key', sa.String(length=120), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['dist_deliveries.id'], name=op.f('fk_dist_sent_items_delivery_id_dist_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscription_id'], ['sub_subscriptions.id'], name=op.f('fk_dist_sent_items_subscription_id_sub_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dist_sent_items')),
    sa.UniqueConstraint('subscription_id', 'item_key', name=op.f('uq_dist_sent_items_subscription_id_item_key'))
    )
    with op.batch_alter_table('dist_sent_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dist_sent_items_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_dist_sent_items_subscription_id'), ['subscription_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dist_sent_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dist_sent_items_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_dist_sent_items_delivery_id'))

    op.drop_table('dist_sent_items')
    with op.batch_alter_table('dist_review_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dist_review_items_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_dist_review_items_status'))

    op.drop_table('dist_review_items')
    with op.batch_alter_table('dist_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dist_deliveries_subscription_id'))
        batch_op.drop_index(batch_op.f('ix_dist_deliveries_status'))

    op.drop_table('dist_deliveries')
    with op.batch_alter_table('dist_audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dist_audit_events_at'))

    op.drop_table('dist_audit_events')
