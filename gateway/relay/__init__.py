"""The call upstream (upstream, upstream_attempt, upstream_call: failover across a route's
deployments) and the answer on its way to the client: one RelayContext (context) to the
byte relay (stream) or the translating one (translated, encoders), watched for the client
leaving (client_watch), journaled (journal), settled before its cost is told (delivery)."""
