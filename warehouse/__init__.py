"""warehouse: see DESIGN.md (layout)."""
