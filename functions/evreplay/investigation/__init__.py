"""Investigation reads over the index: event rows, lag, volume, gaps, duplicates."""
