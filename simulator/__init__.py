"""simulator: see DESIGN.md (layout)."""
