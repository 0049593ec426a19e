"""The data sources a backup covers, one package each."""
