"""Files and stores: embedding files, unlabeled inputs (text, images, arrays), scoring a source, checkpoint
loading, hyperparameters from names and sidecars, and the SQLite stores."""
