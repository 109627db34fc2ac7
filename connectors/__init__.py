"""connectors: see DESIGN.md (layout)."""
