"""Prometheus metrics: what processes observe (`observed`), what the database says at
scrape time (`farm_collector`), and how one scrape puts them together (`exposition`)."""
