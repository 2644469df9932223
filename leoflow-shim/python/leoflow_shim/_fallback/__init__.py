"""Stand-ins for packages DAG files import at top level; on sys.path only when the real one is absent."""
