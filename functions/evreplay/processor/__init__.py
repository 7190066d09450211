"""The demo processor: aggregates folded from replay messages, and their diffs."""
