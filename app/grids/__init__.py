"""Pillow drawing of comparison grids from layouts computed in `app.domain.grid_layout`."""
