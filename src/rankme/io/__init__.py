"""Files and stores: embedding files (one suffix → one reader), the array picker, tables, chunked stores and shards,
unlabeled inputs (text, images, arrays) and labels, hyperparameters from names and sidecars, and the SQLite results
store (whose errors are decided by SQLite's result codes). Scoring a source is :mod:`rankme.scoring`'s; loading a
checkpoint, :mod:`rankme.models`'."""
