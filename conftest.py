def pytest_collection_modifyitems(items):
    """The tutorials keep the outputs of a docs-scale run, and `nbdev_clean` removes every execution count; nbval fails
    a cell whose stored outputs have no count ("Unrun reference cell has outputs") although --nbval-lax compares no
    outputs: count such cells as run."""
    for item in items:
        cell = getattr(item, "cell", None)
        if cell is not None and cell.get("outputs") and cell.get("execution_count") is None: cell.execution_count = 0
