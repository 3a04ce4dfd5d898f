"""Reading captures with DuckDB: views, rules, verdicts and reports. Imports only the codec and schema from the recorder."""
