"""Delivery → signed POST: the delivery stage (the only place that sends HTTP requests)."""
