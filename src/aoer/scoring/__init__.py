"""The AOER score: set-based SQL and its Python entry points; signal ingestion; demo data."""
