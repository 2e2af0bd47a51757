"""Files the runs produce: where they live under DATA_DIR, how they are written and hashed,
and the metadata chunks added to PNGs. Nothing here touches the database or the network."""
