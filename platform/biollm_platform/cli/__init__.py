"""The `biollm` command line: one Typer app (app.py) and one module per command group."""
