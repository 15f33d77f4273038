"""Eye-emotion data (docs/data_eye.md)."""
