"""The gateway: REST and gRPC listeners, admission, dispatch to handlers, error mapping."""
