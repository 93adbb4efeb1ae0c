"""`make bench`: what the App costs on top of the PIM's own round trips (see bench/__main__.py)."""
