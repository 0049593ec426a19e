"""The application bucket: every object with its metadata, as one tar.gz archive."""
