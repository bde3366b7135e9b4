"""Generated gRPC stubs of proto/gradlab/v1/gradlab.proto (python/tools/gen_stubs.py writes them)."""
