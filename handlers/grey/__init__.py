"""Handlers of Grey Distributed, the primary contract: one module per API tag."""
