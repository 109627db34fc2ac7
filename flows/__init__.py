"""flows: see DESIGN.md (layout)."""
