"""Re-implementations of the seed systems (published learned image codecs) as rdbench codecs."""
