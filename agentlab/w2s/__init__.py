"""Weak-to-strong generalisation with debate (METHODS.md §7): the `w2s` task's config, data, training and metrics."""
