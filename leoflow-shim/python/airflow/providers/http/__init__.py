"""The HTTP provider: HttpOperator only."""
