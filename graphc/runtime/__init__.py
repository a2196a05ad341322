"""Sessions, their variable storage and the fetch/feed plumbing."""
