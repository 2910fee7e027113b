"""The steps every inference request runs (serve): authenticate (auth), resolve its route
(routing), admit its credit hold and limits (credit), call and relay, settle (credit,
settlement); what differs per client protocol is a ClientApi (client_api)."""
