"""Locust users for Grey: REST (FastHttpUser) and gRPC (grpcio stubs)."""
