"""Delivery → signed POST: the delivery stage (the only place that imports requests)."""
