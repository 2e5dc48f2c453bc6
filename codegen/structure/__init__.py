"""Structure recovery: repeated blocks, stages (in progress, see issue 8)."""
