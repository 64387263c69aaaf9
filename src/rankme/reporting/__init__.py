"""Reports: table formatting (terminal, markdown), figures (one helper, one spectrum plot), HTML pages."""
