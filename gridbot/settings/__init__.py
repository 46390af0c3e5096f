"""The toolkit every settings model is built with: field types and their checks
(fields.py), where a value came from and environment references (environment.py), the
problems found (issues.py) and the walk over a model's shape (schema.py).

It imports nothing of gridbot's configuration package, so the platforms' settings
beside their adapters and the configuration that gathers them both build on it without
importing each other in a circle.
"""
