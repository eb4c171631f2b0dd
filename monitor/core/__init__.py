"""The bottom layer: config schema, names, errors, storage; imports third-party only."""
