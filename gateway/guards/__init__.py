"""What may be served, and when: rate limits and caps (limits), the upstream slots and their
priority queue (priority), 429 cool-downs (cooling), circuit breakers (breaker_rules,
breaker_board, breaker_staff) and the health read from traffic (passive_health)."""
