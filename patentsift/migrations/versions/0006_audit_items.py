"""audit items: which review items each audit event touched (dist_audit_items), so the audit trail and reader
feedback are filtered by outlet in SQL; filled from dist_audit_events.item_ids

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:50:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dist_audit_items',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['dist_audit_events.id'],
                            name=op.f('fk_dist_audit_items_event_id_dist_audit_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['dist_review_items.id'],
                            name=op.f('fk_dist_audit_items_item_id_dist_review_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'item_id', name=op.f('pk_dist_audit_items'))
    )
    with op.batch_alter_table('dist_audit_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dist_audit_items_item_id'), ['item_id'], unique=False)
    bind = op.get_bind()
    existing = {r[0] for r in bind.execute(sa.text("SELECT id FROM dist_review_items"))}
    rows = []
    for event_id, item_ids in bind.execute(sa.text("SELECT id, item_ids FROM dist_audit_events")):
        ids = json.loads(item_ids) if isinstance(item_ids, str) else (item_ids or [])
        rows += [{"event_id": event_id, "item_id": int(i)} for i in dict.fromkeys(ids) if int(i) in existing]
    if rows:
        bind.execute(sa.text("INSERT INTO dist_audit_items (event_id, item_id) VALUES (:event_id, :item_id)"), rows)


def downgrade() -> None:
    with op.batch_alter_table('dist_audit_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dist_audit_items_item_id'))
    op.drop_table('dist_audit_items')
