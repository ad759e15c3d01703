"""profiles belong to subscribers: `sub_profiles` (name, outlet_id, spec) holds the profiles and the outlet that owns
each; `matching_profiles` keeps only what matching derives (vectors, calibration, watermark), keyed by the same id.
A profile the web app made (owner "outlet:<id>") gets that outlet_id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sub_profiles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=True),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['outlet_id'], ['sub_outlets.id'], name=op.f('fk_sub_profiles_outlet_id_sub_outlets'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_profiles'))
    )
    with op.batch_alter_table('sub_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_profiles_name'), ['name'], unique=True)
        batch_op.create_index(batch_op.f('ix_sub_profiles_outlet_id'), ['outlet_id'], unique=False)
    op.execute("""
        INSERT INTO sub_profiles (id, name, outlet_id, spec, created_at, updated_at)
        SELECT p.id, p.name, o.id, p.spec, p.created_at, p.updated_at
        FROM matching_profiles p
        LEFT JOIN sub_outlets o ON p.owner = 'outlet:' || CAST(o.id AS VARCHAR(20))
    """)
    if op.get_bind().dialect.name == 'postgresql':  # ids were copied: move the sequence past them
        op.execute("SELECT setval(pg_get_serial_sequence('sub_profiles', 'id'), "
                   "COALESCE((SELECT MAX(id) FROM sub_profiles), 0) + 1, false)")
    with op.batch_alter_table('matching_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matching_profiles_name'))
        batch_op.drop_column('name')
        batch_op.drop_column('owner')
        batch_op.drop_column('spec')
        batch_op.create_foreign_key(batch_op.f('fk_matching_profiles_id_sub_profiles'), 'sub_profiles', ['id'],
                                    ['id'], ondelete='CASCADE')


def downgrade() -> None:
    with op.batch_alter_table('matching_profiles', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_matching_profiles_id_sub_profiles'), type_='foreignkey')
        batch_op.add_column(sa.Column('name', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('owner', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('spec', sa.JSON(), nullable=True))
    op.execute("""
        INSERT INTO matching_profiles (id, watermark, created_at, updated_at)
        SELECT s.id, 0, s.created_at, s.updated_at FROM sub_profiles s
        WHERE s.id NOT IN (SELECT id FROM matching_profiles)
    """)
    op.execute("""
        UPDATE matching_profiles SET
          name = (SELECT s.name FROM sub_profiles s WHERE s.id = matching_profiles.id),
          spec = (SELECT s.spec FROM sub_profiles s WHERE s.id = matching_profiles.id),
          owner = COALESCE((SELECT 'outlet:' || CAST(s.outlet_id AS VARCHAR(20)) FROM sub_profiles s
                            WHERE s.id = matching_profiles.id AND s.outlet_id IS NOT NULL), '')
    """)
    with op.batch_alter_table('matching_profiles', schema=None) as batch_op:
        batch_op.alter_column('name', nullable=False)
        batch_op.alter_column('owner', nullable=False)
        batch_op.alter_column('spec', nullable=False)
        batch_op.create_index(batch_op.f('ix_matching_profiles_name'), ['name'], unique=True)
    with op.batch_alter_table('sub_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_profiles_outlet_id'))
        batch_op.drop_index(batch_op.f('ix_sub_profiles_name'))
    op.drop_table('sub_profiles')
