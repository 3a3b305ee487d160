"""`ethhook demo`: the whole pipeline on one machine with nothing to install or configure."""
