"""Demo data for the local stack."""
