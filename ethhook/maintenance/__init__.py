"""Beat jobs: dispatch due work, release confirmed deliveries, clean up, auto-disable."""
