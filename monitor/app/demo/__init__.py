"""`driftwatch demo`: the whole system on embedded defaults, no cluster needed."""
