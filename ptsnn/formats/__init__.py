"""File formats ptsnn reads and writes (netx HDF5, ...), kept apart from what the files mean."""
