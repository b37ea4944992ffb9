"""Students: distill labels into small models."""
