"""What the people who run the line read: structured logs and Prometheus metrics."""
