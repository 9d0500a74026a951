"""Schema migrations of the relational store (Alembic), run by `eldercare db upgrade`
and at the start of `eldercare run`."""
