"""The steps every inference request runs (serve): authenticate (auth), resolve its route
(routing), admit it (its credit hold and limits: gateway.guards), call and relay
(gateway.relay), settle; what differs per client protocol is a ClientApi (client_api)."""
