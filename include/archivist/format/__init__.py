"""The bundle format: keys, member layout, meta.json, the writer and the reader with its seek
index. Plain Python and ISA-L only: reading a bundle needs no S3 client."""
