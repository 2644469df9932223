"""The built-in operators the shim provides, one module per family."""
