"""Stage 1, templates: DatasetSpecs (source + field mapping + 10 templates) and their rendering."""
