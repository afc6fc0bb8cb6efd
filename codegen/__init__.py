"""The generator: `python -m codegen` reads spec/ and writes generated/ (see codegen.pipeline)."""
