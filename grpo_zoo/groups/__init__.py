"""Group mechanisms: branched state groups and shared-seed episode groups."""
