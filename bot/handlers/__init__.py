"""One module per GitHub event family; each receives what it needs and constructs nothing."""
