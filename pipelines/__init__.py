"""KFP pipelines built from ``components/``; their compiled YAML sits beside them.

Each pipeline is registered as a ``videollm.pipelines`` entry point in ``pyproject.toml``.
"""
