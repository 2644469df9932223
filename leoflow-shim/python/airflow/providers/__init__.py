"""Provider packages: the shim has `standard` and `http` only."""
