"""What may be served, when, and at what cost: rate limits and caps (limits), the upstream
slots and their priority queue (priority), 429 cool-downs (cooling), circuit breakers
(breaker_rules, breaker_board, breaker_staff), what each deployment is measured to do
(deployment_stats) and the health read from traffic (passive_health); and the credit gate,
which holds a request's credit at admission and settles it (credit, settlement)."""
