"""Moving bytes to and from S3-compatible buckets: the client and its errors, multipart
uploads, many-object uploads, the backup bucket with rotation, and staging."""
