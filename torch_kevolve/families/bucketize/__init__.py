"""Bucketize kernel family: bucket indices of values in sorted boundaries (`bucketize`, `searchsorted`)."""
