"""initial schema: matching (profiles, matches, invention keys, feedback) and subscribers (sub_*)

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:37:11.456885
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def _exists(table: str) -> bool:
    return sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if not _exists('matching_profiles'):  # a database MatchStore made with create_all before migrations
        op.create_table('matching_profiles',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('model_id', sa.String(length=200), nullable=True),
        sa.Column('base_vector', sa.LargeBinary(), nullable=True),
        sa.Column('vector', sa.LargeBinary(), nullable=True),
        sa.Column('calibration', sa.JSON(), nullable=True),
        sa.Column('watermark', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_matching_profiles'))
        )
        with op.batch_alter_table('matching_profiles', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_matching_profiles_name'), ['name'], unique=True)
        op.create_table('matching_matches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('profile_id', sa.Integer(), nullable=False),
        sa.Column('doc_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('breakdown', sa.JSON(), nullable=False),
        sa.Column('explanation', sa.JSON(), nullable=False),
        sa.Column('duplicates', sa.JSON(), nullable=False),
        sa.Column('run_id', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['profile_id'], ['matching_profiles.id'], name=op.f('fk_matching_matches_profile_id_matching_profiles'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_matching_matches')),
        sa.UniqueConstraint('profile_id', 'doc_id', name='uq_match_profile_doc')
        )
        with op.batch_alter_table('matching_matches', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_matching_matches_profile_id'), ['profile_id'], unique=False)
        op.create_table('matching_feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('match_id', sa.Integer(), nullable=False),
        sa.Column('profile_id', sa.Integer(), nullable=False),
        sa.Column('doc_id', sa.String(length=64), nullable=False),
        sa.Column('relevant', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['match_id'], ['matching_matches.id'], name=op.f('fk_matching_feedback_match_id_matching_matches'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['profile_id'], ['matching_profiles.id'], name=op.f('fk_matching_feedback_profile_id_matching_profiles'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_matching_feedback'))
        )
        with op.batch_alter_table('matching_feedback', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_matching_feedback_match_id'), ['match_id'], unique=False)
            batch_op.create_index(batch_op.f('ix_matching_feedback_profile_id'), ['profile_id'], unique=False)
        op.create_table('matching_invention_keys',
        sa.Column('profile_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('match_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['match_id'], ['matching_matches.id'], name=op.f('fk_matching_invention_keys_match_id_matching_matches'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['profile_id'], ['matching_profiles.id'], name=op.f('fk_matching_invention_keys_profile_id_matching_profiles'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('profile_id', 'key', name=op.f('pk_matching_invention_keys'))
        )

    op.create_table('sub_outlets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('region', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_outlets')),
    sa.UniqueConstraint('name', name=op.f('uq_sub_outlets_name'))
    )
    op.create_table('sub_organizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['outlet_id'], ['sub_outlets.id'], name=op.f('fk_sub_organizations_outlet_id_sub_outlets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_organizations')),
    sa.UniqueConstraint('outlet_id', 'name', name=op.f('uq_sub_organizations_outlet_id_name'))
    )
    with op.batch_alter_table('sub_organizations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_organizations_outlet_id'), ['outlet_id'], unique=False)
    op.create_table('sub_staff',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'staff')", name=op.f('ck_sub_staff_role')),
    sa.ForeignKeyConstraint(['outlet_id'], ['sub_outlets.id'], name=op.f('fk_sub_staff_outlet_id_sub_outlets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_staff')),
    sa.UniqueConstraint('email', name=op.f('uq_sub_staff_email'))
    )
    with op.batch_alter_table('sub_staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_staff_outlet_id'), ['outlet_id'], unique=False)
    op.create_table('sub_contacts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('flag_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("language IN ('zh', 'en')", name=op.f('ck_sub_contacts_language')),
    sa.ForeignKeyConstraint(['organization_id'], ['sub_organizations.id'], name=op.f('fk_sub_contacts_organization_id_sub_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_contacts')),
    sa.UniqueConstraint('organization_id', 'email', name=op.f('uq_sub_contacts_organization_id_email'))
    )
    with op.batch_alter_table('sub_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_contacts_email'), ['email'], unique=False)
        batch_op.create_index(batch_op.f('ix_sub_contacts_organization_id'), ['organization_id'], unique=False)
    op.create_table('sub_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('profile_names', sa.JSON(), nullable=False),
    sa.Column('frequency', sa.String(length=120), nullable=False),
    sa.Column('max_items', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('auto_approve_above', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("format IN ('html', 'text')", name=op.f('ck_sub_subscriptions_format')),
    sa.CheckConstraint("status IN ('pending', 'active', 'paused', 'unsubscribed')", name=op.f('ck_sub_subscriptions_status')),
    sa.CheckConstraint('max_items > 0', name=op.f('ck_sub_subscriptions_max_items')),
    sa.ForeignKeyConstraint(['contact_id'], ['sub_contacts.id'], name=op.f('fk_sub_subscriptions_contact_id_sub_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_subscriptions'))
    )
    with op.batch_alter_table('sub_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_subscriptions_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sub_subscriptions_status'), ['status'], unique=False)
    op.create_table('sub_consent_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.CheckConstraint("kind IN ('requested', 'confirmed', 'paused', 'resumed', 'unsubscribed')", name=op.f('ck_sub_consent_events_kind')),
    sa.ForeignKeyConstraint(['subscription_id'], ['sub_subscriptions.id'], name=op.f('fk_sub_consent_events_subscription_id_sub_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sub_consent_events'))
    )
    with op.batch_alter_table('sub_consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sub_consent_events_subscription_id'), ['subscription_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sub_consent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_consent_events_subscription_id'))

    op.drop_table('sub_consent_events')
    with op.batch_alter_table('sub_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_subscriptions_status'))
        batch_op.drop_index(batch_op.f('ix_sub_subscriptions_contact_id'))

    op.drop_table('sub_subscriptions')
    with op.batch_alter_table('sub_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_contacts_organization_id'))
        batch_op.drop_index(batch_op.f('ix_sub_contacts_email'))

    op.drop_table('sub_contacts')
    op.drop_table('matching_invention_keys')
    with op.batch_alter_table('matching_feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matching_feedback_profile_id'))
        batch_op.drop_index(batch_op.f('ix_matching_feedback_match_id'))

    op.drop_table('matching_feedback')
    with op.batch_alter_table('sub_staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_staff_outlet_id'))

    op.drop_table('sub_staff')
    with op.batch_alter_table('sub_organizations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sub_organizations_outlet_id'))

    op.drop_table('sub_organizations')
    with op.batch_alter_table('matching_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matching_matches_profile_id'))

    op.drop_table('matching_matches')
    op.drop_table('sub_outlets')
    with op.batch_alter_table('matching_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matching_profiles_name'))

    op.drop_table('matching_profiles')
