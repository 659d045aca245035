"""The local W&B-compatible server (aiohttp + graphql-core + SQLite)."""
