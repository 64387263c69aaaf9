"""Reports: table formatting (terminal, markdown), figures (one helper, one spectrum plot), HTML pages, and the
pure renderers of a selection (text, table, HTML, notebook), registered on the result record when imported."""
