"""The report model and its renderers per platform dialect, within byte budgets."""
