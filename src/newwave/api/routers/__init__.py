"""The API's routers, one per area: search, tracks, library, status."""
