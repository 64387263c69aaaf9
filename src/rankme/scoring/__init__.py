"""Scoring: stream a source's rows into the states its metrics read (spectrum, LiDAR views, kept rows) and compute
them, with the checks and notes around that (exact duplicate rows: ``duplicates``; a layer above io/, monitor/
and models/, below selection/)."""
