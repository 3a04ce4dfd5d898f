"""The acceptance rules: one SQL file each, with a TOML header. Data, not code."""
