"""Jobs: the store (SQLite rows), the runner that drives them, and the delivery interface."""
