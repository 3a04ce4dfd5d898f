"""ocpp-audit: record OCPP 1.6-J traffic into Parquet and judge chargers against acceptance criteria."""

__version__ = "0.1.0"
