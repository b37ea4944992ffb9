"""Label matrices, LF analysis, label models."""
