"""Elasticsearch: indices, mappings, settings, aliases and templates out and back in."""
