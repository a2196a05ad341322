"""Op definitions, one module per family (see ``catalog`` for the list).

This package's ``__init__`` imports nothing so that ``graphc.graph`` can import the registry
without a cycle; ``graphc/__init__.py`` imports ``catalog``, which registers every op.
"""
