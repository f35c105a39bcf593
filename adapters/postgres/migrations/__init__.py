"""Alembic migrations for the budcore PostgreSQL schema (shipped in the wheel; no alembic.ini).

A package (with ``__init__.py``) so ``pip install .`` ships ``env.py`` and ``versions/*.py``
alongside ``script.py.mako``; :mod:`budcore_adapters.postgres.migrate` points Alembic here.
"""
